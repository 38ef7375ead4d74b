-- A small stand-in for the part of Wireshark's Lua API that rsh_wire.lua uses, for
-- tests/test_dissector_lua.py: enough to run the dissector on bytes and read back
-- the tree it builds, strictly (a value of the wrong kind for its field is an error,
-- as it is in Wireshark).

base = { DEC = "DEC" }
expert = { group = { MALFORMED = "MALFORMED" }, severity = { ERROR = "ERROR" } }

REGISTERED = {}
DissectorTable = {
  get = function(name)
    return { add = function(_, port, proto) REGISTERED[#REGISTERED + 1] = { table = name, port = port, proto = proto } end }
  end,
}

function Proto(name, description)
  PROTO = { name = name, description = description, kind = "proto" }
  return PROTO
end

local function field(kind)
  return function(abbr, label) return { abbr = abbr, label = label, kind = kind } end
end
ProtoField = { none = field("none"), uint32 = field("uint32"), string = field("string"), bytes = field("bytes") }
ProtoExpert = { new = function(abbr, text, group, severity) return { abbr = abbr, text = text, group = group, severity = severity } end }

local TvbRange = {}
TvbRange.__index = TvbRange

function TvbRange:uint()
  assert(self.len >= 1 and self.len <= 4, "uint() of a range of " .. self.len .. " bytes")
  local n = 0
  for k = 1, self.len do n = n * 256 + self.s:byte(self.off + k) end
  return n
end

function TvbRange:raw() return self.s:sub(self.off + 1, self.off + self.len) end

function TvbRange:bytes()
  local r = self
  return { get_index = function(_, i) assert(i >= 0 and i < r.len); return r.s:byte(r.off + i + 1) end }
end

local Tvb = {}
Tvb.__index = Tvb
Tvb.__call = function(self, off, len)
  off = off or 0
  len = len or (#self.s - off)
  if off < 0 or len < 0 or off + len > #self.s then error("Range is out of bounds", 2) end
  return setmetatable({ s = self.s, off = off, len = len }, TvbRange)
end
function Tvb:len() return #self.s end
function Tvb:raw(off, len) return self(off, len):raw() end

function make_tvb(s) return setmetatable({ s = s }, Tvb) end

local Item = {}
Item.__index = Item

local function new_item(what, range, value)
  return setmetatable({ what = what, range = range, value = value, children = {}, experts = {} }, Item)
end

function Item:add(what, range, value)
  if getmetatable(range) ~= TvbRange then range, value = nil, range end
  if value == nil and range ~= nil and what.kind == "uint32" then value = range:uint() end
  if value == nil and range ~= nil and (what.kind == "string" or what.kind == "bytes") then value = range:raw() end
  if what.kind == "uint32" then assert(type(value) == "number", what.abbr .. " given a " .. type(value)) end
  if what.kind == "string" then assert(type(value) == "string", what.abbr .. " given a " .. type(value)) end
  local child = new_item(what, range, value)
  self.children[#self.children + 1] = child
  return child
end
function Item:set_text(text) self.text = text; return self end
function Item:append_text(text) self.text = (self.text or "") .. text; return self end
function Item:add_proto_expert_info(e, text) self.experts[#self.experts + 1] = { e.abbr, text }; return self end

function make_tree() return new_item({ kind = "root" }) end

function make_pinfo(src_port, match_port)
  local info = { text = "" }
  function info:set(text) self.text = text end
  function info:append(text) self.text = self.text .. text end
  return { cols = { info = info, protocol = "" }, src_port = src_port, match_uint = match_port, desegment_offset = 0, desegment_len = 0 }
end

-- Hand every rsh frame in *tree* to emit(kind, ...): ("frame", text), ("field", abbr, label, value),
-- ("expert", abbr, text).
function walk(tree, emit)
  local function visit(item)
    for _, child in ipairs(item.children) do
      if child.what.abbr == "rshwire.frame" then emit("frame", child.text or "") end
      if child.what.abbr and child.what.abbr ~= "rshwire.frame" then
        local v = child.value
        emit("field", child.what.abbr, child.what.label, type(v) == "number" and string.format("%.0f", v) or v)
      end
      for _, e in ipairs(child.experts) do emit("expert", e[1], e[2]) end
      visit(child)
    end
  end
  visit(tree)
end
