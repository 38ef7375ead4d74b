"""``rsh completion bash|zsh|fish``: a script that teaches the shell rsh's command line.

The subcommands and their options are read from the parsers when the script
is printed, so the script knows every option rsh has; host names come from
the config file each time they are completed (``rsh completion --hosts``),
so a host added to it is completed at once.
"""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run", "SHELLS"]

SHELLS = ("bash", "zsh", "fish")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str) -> None:
    """Add ``rsh completion`` to the subcommands."""
    p = sub.add_parser(
        name,
        help="print a shell completion script (bash, zsh, fish)",
        description="Print a completion script for SHELL, completing subcommands, options and the config file's host names. "
        "bash: source <(rsh completion bash) in ~/.bashrc; zsh: source <(rsh completion zsh) after compinit in ~/.zshrc; "
        "fish: rsh completion fish > ~/.config/fish/completions/rsh.fish",
    )
    p.add_argument("shell", nargs="?", choices=SHELLS, metavar="SHELL", help="bash, zsh or fish")
    p.add_argument("--hosts", action="store_true", help="print the config file's host names, one a line (what the scripts call)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the script for *args.shell*, or the host names; return the exit status."""
    from .options import UsageError

    if args.hosts:
        from .hostconfig import ConfigError, load_config

        try:
            config = load_config()
        except ConfigError:
            return 1  # completion stays quiet; `rsh config` says what is wrong
        print("\n".join(config.hosts))
        return 0
    if args.shell is None:
        raise UsageError("which shell? rsh completion bash|zsh|fish")
    commands = _commands()
    print({"bash": _bash, "zsh": _zsh, "fish": _fish}[args.shell](commands), end="")
    return 0


class _Option:
    def __init__(self, action: argparse.Action) -> None:
        self.names = list(action.option_strings)
        self.takes_value = action.nargs != 0
        self.is_path = action.metavar == "PATH"
        self.help = (action.help or "").replace("%%", "%").split(" (")[0]


def _commands() -> dict[str, tuple[str, list[_Option]]]:
    """Subcommand -> (its help, its options), from the parsers themselves."""
    from .main import build_parser

    parser = build_parser()
    out: dict[str, tuple[str, list[_Option]]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                out[name] = (helps.get(name, ""), [_Option(a) for a in sub._actions if a.option_strings])
    return out


def _words(options: list[_Option], which: str) -> str:
    picked = [o for o in options if which == "all" or (which == "value" and o.takes_value) or (which == "path" and o.is_path)]
    return " ".join(n for o in picked for n in o.names)


def _cases(commands: dict[str, tuple[str, list[_Option]]], which: str) -> str:
    """A POSIX ``case`` on the subcommand ($1) echoing its options of one kind (bash and zsh share it)."""
    return "".join(f"        {name}) echo '{_words(opts, which)}' ;;\n" for name, (_, opts) in commands.items())


_SHARED = """_rsh_opts() {
    case $1 in
%(all)s    esac
}
_rsh_value_opts() {
    case $1 in
%(value)s    esac
}
_rsh_path_opts() {
    case $1 in
%(path)s    esac
}
"""


def _shared(commands: dict[str, tuple[str, list[_Option]]]) -> str:
    return _SHARED % {k: _cases(commands, k) for k in ("all", "value", "path")}


_BASH = """# rsh completion for bash.  Load it with: source <(rsh completion bash)
%(shared)s
_rsh() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local subs="%(subs)s" sub="" host="" skip=0 i w
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if ((skip)); then skip=0; continue; fi
        if [[ -z $sub ]]; then
            if [[ " $subs " == *" $w "* ]]; then sub=$w; continue; fi
            sub=connect  # rsh [OPTIONS] HOST: the prompt's options
        fi
        case $w in
            --) [[ -n $host ]] && { COMPREPLY=(); compopt -o default 2>/dev/null; return; } ;;
            -*) [[ " $(_rsh_value_opts "$sub") " == *" $w "* ]] && skip=1 ;;
            *) [[ -z $host ]] && host=$w || { [[ $sub == exec || $sub == connect ]] && { compopt -o default 2>/dev/null; COMPREPLY=(); return; }; } ;;
        esac
    done
    local s=${sub:-connect}
    if [[ " $(_rsh_value_opts "$s") " == *" $prev "* ]]; then
        COMPREPLY=()
        [[ " $(_rsh_path_opts "$s") " == *" $prev "* ]] && compopt -o default 2>/dev/null
        return
    fi
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(_rsh_opts "$s")" -- "$cur"))
        return
    fi
    local hosts
    hosts=$(command "${COMP_WORDS[0]}" completion --hosts 2>/dev/null)
    case $sub in
        "") COMPREPLY=($(compgen -W "$subs $hosts" -- "$cur")) ;;
        exec|connect|config) [[ -z $host ]] && COMPREPLY=($(compgen -W "$hosts" -- "$cur")) || { compopt -o default 2>/dev/null; COMPREPLY=(); } ;;
        put|get) COMPREPLY=($(compgen -W "$hosts" -- "$cur") $(compgen -f -- "$cur")) ;;
        completion) COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur")) ;;
        demo) COMPREPLY=($(compgen -W "coalesce truncate header markers udp all" -- "$cur")) ;;
        *) COMPREPLY=() ;;
    esac
}
complete -F _rsh rsh
"""


def _bash(commands: dict[str, tuple[str, list[_Option]]]) -> str:
    return _BASH % {"shared": _shared(commands), "subs": " ".join(commands)}


_ZSH = """#compdef rsh
# rsh completion for zsh.  Load it with: source <(rsh completion zsh)  (after compinit)
%(shared)s
_rsh() {
    local -a subs hosts
    subs=(%(subs)s)
    local sub="" host="" w cur=${words[CURRENT]} prev=${words[CURRENT-1]}
    integer skip=0 i
    for (( i = 2; i < CURRENT; i++ )); do
        w=${words[i]}
        if (( skip )); then skip=0; continue; fi
        if [[ -z $sub ]]; then
            if (( ${subs[(Ie)$w]} )); then sub=$w; continue; fi
            sub=connect
        fi
        case $w in
            --) [[ -n $host ]] && { _files; return; } ;;
            -*) [[ " $(_rsh_value_opts $sub) " == *" $w "* ]] && skip=1 ;;
            *) if [[ -z $host ]]; then host=$w; elif [[ $sub == exec || $sub == connect ]]; then _files; return; fi ;;
        esac
    done
    local s=${sub:-connect}
    if [[ " $(_rsh_value_opts $s) " == *" $prev "* ]]; then
        [[ " $(_rsh_path_opts $s) " == *" $prev "* ]] && _files
        return
    fi
    if [[ $cur == -* ]]; then
        compadd -- ${=$(_rsh_opts $s)}
        return
    fi
    hosts=(${(f)"$(command ${words[1]} completion --hosts 2>/dev/null)"})
    case $sub in
        "") compadd -- $subs $hosts ;;
        exec|connect|config) if [[ -z $host ]]; then compadd -- $hosts; else _files; fi ;;
        put|get) compadd -- $hosts; _files ;;
        completion) compadd -- bash zsh fish ;;
        demo) compadd -- coalesce truncate header markers udp all ;;
    esac
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _rsh "$@"
else
    compdef _rsh rsh
fi
"""


def _zsh(commands: dict[str, tuple[str, list[_Option]]]) -> str:
    return _ZSH % {"shared": _shared(commands), "subs": " ".join(commands)}


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish(commands: dict[str, tuple[str, list[_Option]]]) -> str:
    lines = [
        "# rsh completion for fish.  Install it with: rsh completion fish > ~/.config/fish/completions/rsh.fish",
        "function __rsh_hosts",
        "    command rsh completion --hosts 2>/dev/null",
        "end",
        "complete -c rsh -f",
    ]
    for name, (summary, _) in commands.items():
        lines.append(f"complete -c rsh -n __fish_use_subcommand -a {name} -d {_fish_quote(summary)}")
    lines.append("complete -c rsh -n __fish_use_subcommand -a '(__rsh_hosts)' -d host")
    for name, (_, options) in commands.items():
        # Before any subcommand, the options are the prompt's (rsh [OPTIONS] HOST).
        conditions = [f"'__fish_seen_subcommand_from {name}'"] + (["__fish_use_subcommand"] if name == "connect" else [])
        for option in options:
            flags = " ".join(f"-l {n[2:]}" if n.startswith("--") else f"-s {n[1:]}" for n in option.names)
            value = " -r" + (" -F" if option.is_path else "") if option.takes_value else ""
            for condition in conditions:
                lines.append(f"complete -c rsh -n {condition} {flags}{value} -d {_fish_quote(option.help)}")
    lines.append("complete -c rsh -n '__fish_seen_subcommand_from exec connect config put get' -a '(__rsh_hosts)' -d host")
    lines.append("complete -c rsh -n '__fish_seen_subcommand_from exec put get' -F")
    lines.append("complete -c rsh -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'")
    lines.append("complete -c rsh -n '__fish_seen_subcommand_from demo' -a 'coalesce truncate header markers udp all'")
    return "\n".join(lines) + "\n"
