-- rsh_wire.lua: a Wireshark dissector for the rsh wire protocol (docs/protocol.md).
--
-- Every rsh message is one frame: a 4-byte big-endian length H, H bytes of
-- UTF-8 JSON header (an object with "type" and maybe "size"), then "size"
-- bytes of payload.  This dissector reassembles frames across TCP segments
-- (one frame in many segments, many frames in one segment), names every
-- header field, and flags the frames rsh's own decoder refuses, with the
-- error code the receiver would send back.
--
-- Wireshark already has a protocol called "rsh" (BSD remote shell, TCP 514),
-- so this one is "rshwire".  It is registered for rsh's default port, 7022;
-- for any other: Decode As... (tshark: -d tcp.port==PORT,rshwire).  A server
-- off loopback speaks TLS, whose frames no capture can show: by design.
--
-- Use it once:  wireshark -X lua_script:/path/to/rsh_wire.lua capture.pcapng
-- Install it:   rsh demo wireshark --install   (copies it to the plugin folder)

local MAX_HEADER_SIZE = 64 * 1024 -- rsh.protocol.frames.MAX_HEADER_SIZE
local MAX_PAYLOAD = 1024 * 1024 -- the receiver's default frame limit
local DEFAULT_PORT = 7022
local PREVIEW = 16 -- payload bytes shown as text, as --trace shows them

local MESSAGE_TYPES = {}
for t in ([[hello auth auth_ok exec stdin stdout stderr signal closed exit error complete
    completions shell shell_ok line line_end tty input resize check checked
    put get file dir symlink ready resume data file_end ok end done]]):gmatch("%S+") do
  MESSAGE_TYPES[t] = true
end

local rshwire = Proto("rshwire", "rsh wire protocol (length-prefixed JSON frames)")

local f = {
  frame = ProtoField.none("rshwire.frame", "rsh frame"),
  prefix = ProtoField.uint32("rshwire.prefix", "Header length (prefix)", base.DEC),
  header = ProtoField.string("rshwire.header", "JSON header"),
  type = ProtoField.string("rshwire.type", "type"),
  size = ProtoField.uint32("rshwire.size", "size", base.DEC),
  field = ProtoField.string("rshwire.field", "Header field"),
  payload_len = ProtoField.uint32("rshwire.payload_len", "Payload length", base.DEC),
  payload = ProtoField.bytes("rshwire.payload", "Payload"),
  preview = ProtoField.string("rshwire.preview", "Payload starts"),
  error = ProtoField.string("rshwire.error", "Refused as"),
}
-- The fields docs/protocol.md defines get a filter name each (rshwire.exit_code == "0");
-- any other name still shows, under rshwire.field.
local NAMED = {}
for name in ([[version server nonce auth encoding os shell user host home mac cwd env
    timeout stdin session eof signal exit_code timed_out elapsed stdout_bytes stderr_bytes
    exports code message id kind prefix items path recursive resume into mode mtime
    target offset sha256 skipped reason]]):gmatch("%S+") do
  local abbr = (name == "prefix") and "complete_prefix" or name
  NAMED[name] = ProtoField.string("rshwire." .. abbr, name)
end

local fields = {}
for _, v in pairs(f) do fields[#fields + 1] = v end
for _, v in pairs(NAMED) do fields[#fields + 1] = v end
rshwire.fields = fields

local ex_malformed = ProtoExpert.new("rshwire.malformed", "Malformed rsh frame", expert.group.MALFORMED, expert.severity.ERROR)
rshwire.experts = { ex_malformed }

-- ---------------------------------------------------------------------------
-- A small JSON reader: enough to check a header as Python's json.loads would
-- and to say where each top-level value lies in the header's bytes.

local function utf8_valid(s)
  local i, n = 1, #s
  while i <= n do
    local c = s:byte(i)
    local len, min
    if c < 0x80 then len, min = 1, 0
    elseif c >= 0xC2 and c <= 0xDF then len, min = 2, 0x80
    elseif c >= 0xE0 and c <= 0xEF then len, min = 3, 0x800
    elseif c >= 0xF0 and c <= 0xF4 then len, min = 4, 0x10000
    else return false, i - 1 end
    if i + len - 1 > n then return false, i - 1 end
    local cp = c % (2 ^ (7 - len))
    if len == 1 then cp = c end
    for k = 1, len - 1 do
      local cc = s:byte(i + k)
      if cc < 0x80 or cc > 0xBF then return false, i - 1 end
      cp = cp * 64 + (cc - 0x80)
    end
    if cp < min or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then return false, i - 1 end
    i = i + len
  end
  return true
end

local function utf8_char(cp)
  if cp < 0x80 then return string.char(cp) end
  if cp < 0x800 then return string.char(0xC0 + math.floor(cp / 64), 0x80 + cp % 64) end
  if cp < 0x10000 then
    return string.char(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
  end
  return string.char(0xF0 + math.floor(cp / 262144), 0x80 + math.floor(cp / 4096) % 64,
    0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
end

local ESCAPES = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }

local function skip_ws(s, i)
  return (s:find("[^ \t\r\n]", i)) or (#s + 1)
end

local parse_value

local function parse_string(s, i) -- s:sub(i, i) == '"'
  local out, j = {}, i + 1
  while true do
    local c = s:sub(j, j)
    if c == "" then error({ pos = j, msg = "unterminated string" }) end
    if c == '"' then return table.concat(out), j + 1, "string" end
    if c == "\\" then
      local e = s:sub(j + 1, j + 1)
      if ESCAPES[e] then
        out[#out + 1] = ESCAPES[e]
        j = j + 2
      elseif e == "u" then
        local hex = s:sub(j + 2, j + 5)
        if not hex:match("^%x%x%x%x$") then error({ pos = j, msg = "bad \\u escape" }) end
        local cp = tonumber(hex, 16)
        j = j + 6
        if cp >= 0xD800 and cp <= 0xDBFF and s:sub(j, j + 1) == "\\u" then
          local lo = tonumber(s:sub(j + 2, j + 5), 16)
          if lo and lo >= 0xDC00 and lo <= 0xDFFF then
            cp = 0x10000 + (cp - 0xD800) * 1024 + (lo - 0xDC00)
            j = j + 6
          end
        end
        out[#out + 1] = utf8_char(cp)
      else
        error({ pos = j, msg = "bad escape" })
      end
    elseif c:byte() < 0x20 then
      error({ pos = j, msg = "control character in string" })
    else
      out[#out + 1] = c
      j = j + 1
    end
  end
end

local function parse_number(s, i) -- JSON's grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][-+]?[0-9]+)?
  local j = i
  if s:sub(j, j) == "-" then j = j + 1 end
  local int = s:match("^%d+", j)
  if not int or (#int > 1 and int:sub(1, 1) == "0") then error({ pos = i, msg = "bad number" }) end
  j = j + #int
  local integer = true
  local frac = s:match("^%.%d+", j)
  if frac then
    j, integer = j + #frac, false
  elseif s:sub(j, j) == "." then
    error({ pos = j, msg = "bad number" })
  end
  local exp = s:match("^[eE][-+]?%d+", j)
  if exp then
    j, integer = j + #exp, false
  elseif s:match("^[eE]", j) then
    error({ pos = j, msg = "bad number" })
  end
  return tonumber(s:sub(i, j - 1)), j, integer and "integer" or "number"
end

local function parse_object(s, i)
  local members, j = {}, skip_ws(s, i + 1)
  if s:sub(j, j) == "}" then return members, j + 1, "object" end
  while true do
    if s:sub(j, j) ~= '"' then error({ pos = j, msg = "expected a property name" }) end
    local key, k = parse_string(s, j)
    k = skip_ws(s, k)
    if s:sub(k, k) ~= ":" then error({ pos = k, msg = "expected ':'" }) end
    local vstart = skip_ws(s, k + 1)
    local value, vend, kind = parse_value(s, vstart)
    members[#members + 1] = { key = key, value = value, kind = kind, first = vstart, last = vend - 1 }
    j = skip_ws(s, vend)
    local c = s:sub(j, j)
    if c == "}" then return members, j + 1, "object" end
    if c ~= "," then error({ pos = j, msg = "expected ',' or '}'" }) end
    j = skip_ws(s, j + 1)
  end
end

local function parse_array(s, i)
  local items, j = {}, skip_ws(s, i + 1)
  if s:sub(j, j) == "]" then return items, j + 1, "array" end
  while true do
    local value, vend = parse_value(s, j)
    items[#items + 1] = value
    j = skip_ws(s, vend)
    local c = s:sub(j, j)
    if c == "]" then return items, j + 1, "array" end
    if c ~= "," then error({ pos = j, msg = "expected ',' or ']'" }) end
    j = skip_ws(s, j + 1)
  end
end

local WORDS = { { "true", "boolean", true }, { "false", "boolean", false }, { "null", "null", nil },
  { "NaN", "number", 0 / 0 }, { "Infinity", "number", math.huge }, { "-Infinity", "number", -math.huge } }

parse_value = function(s, i)
  local c = s:sub(i, i)
  if c == "{" then return parse_object(s, i) end
  if c == "[" then return parse_array(s, i) end
  if c == '"' then return parse_string(s, i) end
  if (c == "-" and s:sub(i + 1, i + 1) ~= "I") or c:match("%d") then return parse_number(s, i) end
  -- Python's json.loads also takes NaN and the infinities (as floats: a bad size, not a bad header).
  for _, w in ipairs(WORDS) do
    if s:sub(i, i + #w[1] - 1) == w[1] then return w[3], i + #w[1], w[2] end
  end
  error({ pos = i, msg = "expected a value" })
end

-- Parse a whole header; return the top-level value and its kind, or nil and why.
local function parse_json(s)
  local ok, value, pos, kind = pcall(function()
    local v, p, k = parse_value(s, skip_ws(s, 1))
    return v, p, k
  end)
  if not ok then
    if type(value) == "table" then return nil, string.format("%s at byte %d", value.msg, value.pos - 1) end
    return nil, tostring(value) -- nested too deep for Lua's stack: no header rsh sends
  end
  if skip_ws(s, pos) <= #s then return nil, string.format("extra data at byte %d", skip_ws(s, pos) - 1) end
  return value, kind
end

-- ---------------------------------------------------------------------------

local function printable(s)
  return (s:gsub("[^\32-\126]", "."))
end

-- The length prefix, with its four bytes as --trace prints them.
local function add_prefix(tree, tvb, offset)
  local r = tvb(offset, 4)
  local b = r:bytes()
  tree:add(f.prefix, r):append_text(string.format(" (%02x %02x %02x %02x)", b:get_index(0), b:get_index(1), b:get_index(2), b:get_index(3)))
end

local function refuse(tree, pinfo, range, code, text)
  local item = tree:add(f.error, range, code)
  item:add_proto_expert_info(ex_malformed, code .. ": " .. text)
  pinfo.cols.info:append(" [" .. code .. "]")
end

-- Check the header as rsh's FrameDecoder does; return (type, size, members) or nil, code, why.
local function check_header(raw)
  local ok, at = utf8_valid(raw)
  if not ok then return nil, "bad_header", "header is not valid UTF-8 (at byte " .. at .. ")" end
  local header, kind = parse_json(raw)
  if header == nil then return nil, "bad_header", "header is not valid JSON (" .. kind .. ")" end
  if kind ~= "object" then return nil, "bad_header", "header is a JSON " .. kind .. ", not an object" end
  local type_, size_m
  for _, m in ipairs(header) do
    -- json.loads keeps the last of repeated keys; so does this.
    if m.key == "type" then type_ = m end
    if m.key == "size" then size_m = m end
  end
  -- rsh reads a null type as no type at all.
  if type_ == nil or type_.kind == "null" then return nil, "bad_header", "header has no 'type'" end
  if type_.kind ~= "string" or not MESSAGE_TYPES[type_.value] then
    return nil, "unknown_type", "unknown message type " .. raw:sub(type_.first, type_.last)
  end
  local size = 0
  if size_m ~= nil then
    if size_m.kind ~= "integer" or size_m.value < 0 then
      return nil, "bad_size", string.format("%s frame has invalid size %s", type_.value, raw:sub(size_m.first, size_m.last))
    end
    size = size_m.value
  end
  if size > MAX_PAYLOAD then
    -- %.0f, not %d: Lua 5.3+ keeps a size past 2^63 as a float, which %d refuses.
    return nil, "payload_too_large", string.format("%s payload of %.0f bytes is over the %d-byte limit", type_.value, size, MAX_PAYLOAD)
  end
  return type_.value, size, header
end

-- Dissect the frame at *offset*: return the bytes it takes, or -(bytes still missing),
-- or nil when the frame is malformed (the rest of the stream cannot be trusted).
local function dissect_frame(tvb, pinfo, tree, offset)
  local avail = tvb:len() - offset
  if avail < 4 then return -(4 - avail) end
  local hlen = tvb(offset, 4):uint()
  if hlen > MAX_HEADER_SIZE then
    local sub = tree:add(f.frame, tvb(offset, avail)):set_text("rsh frame: malformed")
    add_prefix(sub, tvb, offset)
    refuse(sub, pinfo, tvb(offset, 4), "header_too_large",
      string.format("header length %d is over the %d-byte limit", hlen, MAX_HEADER_SIZE))
    pinfo.cols.info:append(" malformed")
    return nil
  end
  if avail < 4 + hlen then return -(4 + hlen - avail) end
  local raw = tvb:raw(offset + 4, hlen)
  local type_, size, members = check_header(raw)
  if type_ == nil then
    local code, why = size, members
    local sub = tree:add(f.frame, tvb(offset, avail)):set_text("rsh frame: malformed")
    add_prefix(sub, tvb, offset)
    if hlen > 0 then sub:add(f.header, tvb(offset + 4, hlen), printable(raw)) end
    refuse(sub, pinfo, hlen > 0 and tvb(offset + 4, hlen) or tvb(offset, 4), code, why)
    pinfo.cols.info:append(" malformed")
    return nil
  end
  local total = 4 + hlen + size
  if avail < total then return -(total - avail) end

  local sub = tree:add(f.frame, tvb(offset, total))
  sub:set_text(string.format("rsh frame: %s, 4 + %d + %d = %d bytes", type_, hlen, size, total))
  add_prefix(sub, tvb, offset)
  local htree = sub:add(f.header, tvb(offset + 4, hlen), raw)
  for _, m in ipairs(members) do
    local range = tvb(offset + 4 + m.first - 1, m.last - m.first + 1)
    local text = (m.kind == "string") and m.value or raw:sub(m.first, m.last)
    if m.key == "type" then
      htree:add(f.type, range, m.value)
    elseif m.key == "size" then
      htree:add(f.size, range, size)
    elseif NAMED[m.key] then
      htree:add(NAMED[m.key], range, text)
    else
      htree:add(f.field, range, m.key .. ": " .. text):set_text(m.key .. ": " .. text)
    end
  end
  if size > 0 then
    local ptree = sub:add(f.payload, tvb(offset + 4 + hlen, size))
    ptree:add(f.payload_len, tvb(offset + 4 + hlen, size), size)
    local shown = math.min(size, PREVIEW)
    local more = size > shown and string.format(" (+%d B)", size - shown) or ""
    ptree:add(f.preview, tvb(offset + 4 + hlen, shown), printable(tvb:raw(offset + 4 + hlen, shown)) .. more)
  else
    sub:add(f.payload_len, 0)
  end
  pinfo.cols.info:append(size > 0 and string.format(" %s(%d B)", type_, size) or (" " .. type_))
  return total
end

function rshwire.dissector(tvb, pinfo, tree)
  local len = tvb:len()
  if len == 0 then return 0 end
  pinfo.cols.protocol = "rshwire"
  pinfo.cols.info:set(pinfo.src_port == pinfo.match_uint and "server ->" or "client ->")
  local root = tree:add(rshwire, tvb())
  local offset = 0
  while offset < len do
    local taken = dissect_frame(tvb, pinfo, root, offset)
    if taken == nil then
      return len -- malformed: the receiver would close the connection here
    end
    if taken < 0 then
      -- The frame goes on in later segments: ask TCP for the bytes it still needs.
      pinfo.desegment_offset = offset
      pinfo.desegment_len = -taken
      return len
    end
    offset = offset + taken
  end
  return offset
end

DissectorTable.get("tcp.port"):add(DEFAULT_PORT, rshwire)
