# METADATA
# title: Quarantine list
# description: >-
#   Quarantine packages named in data.sbomgate.quarantine: a list of
#   {purl, vers?, reason?} entries. "pkg:type/ns/name@version" quarantines one
#   version; "pkg:type/ns/name" with a vers range ("vers:pypi/>=1.0.0|<2.0.0",
#   "vers:npm/1.2.3|1.2.4", "vers:pypi/*") quarantines the versions in the range;
#   "pkg:type/ns/name" alone quarantines every version.
# custom:
#   action: Quarantine
#   precedence: 20
#   terminal: true
package cloudsmith

import rego.v1

# Package identity: purls are compared without version, qualifiers and subpath,
# case-insensitively, with %40 decoded to "@" and, for pypi, "_" and "."
# folded to "-". The package's own purl comes from input.v0.package.purl.
#
# vers ranges (https://github.com/package-url/purl-spec VERSION-RANGE-SPEC):
# "vers:<scheme>/" is stripped (the scheme is not checked against the purl
# type), spaces are removed, constraints are split on "|". Operators: >=, <=,
# >, <, !=, = or none (=). "*" matches every version. "=" and "!=" compare
# strings exactly; = wins, then != excludes; a range made only of != constraints
# matches every other version. Range constraints follow the spec's pairing: the
# lowest "<"/"<=" and the highest ">"/">=" are open-ended, and a ">"/">="
# followed (in version order) by a "<"/"<=" is an interval.
# Version order uses semver.compare. In OPA it errors (so: no match) on versions
# that are not semver, such as "0.15" or "1.0.0rc1"; the sbomgate engine
# replaces semver.compare with a lenient ecosystem comparator. Exact entries
# (purl@version) compare strings and work in both.

default match := false

match if count(reason) > 0

default _entries := []

_entries := e if {
	e := data.sbomgate.quarantine
	is_array(e)
}

# --- purl handling ------------------------------------------------------------

# "pkg:type/ns/name@version?qualifiers#subpath" -> {"base": ..., "version": ...}
_split_purl(p) := {"base": _norm_base(base), "version": version} if {
	no_sub := split(p, "#")[0]
	no_q := split(no_sub, "?")[0]
	segs := split(no_q, "/")
	n := count(segs)
	n >= 2
	last := segs[n - 1]
	at := indexof(last, "@")
	at >= 0
	base := concat("/", array.concat(array.slice(segs, 0, n - 1), [substring(last, 0, at)]))
	version := substring(last, at + 1, -1)
} else := {"base": _norm_base(base), "version": null} if {
	no_sub := split(p, "#")[0]
	base := split(no_sub, "?")[0]
}

_norm_base(b) := regex.replace(s, `[_.]`, "-") if {
	s := lower(replace(trim_suffix(b, "/"), "%40", "@"))
	startswith(s, "pkg:pypi/")
} else := lower(replace(trim_suffix(b, "/"), "%40", "@"))

_pkg_purl := _split_purl(p) if {
	p := input.v0.package.purl
	is_string(p)
	startswith(lower(p), "pkg:")
}

_pkg_version := v if {
	v := _pkg_purl.version
	is_string(v)
	v != ""
} else := v if {
	v := input.v0.package.version
	is_string(v)
	v != ""
}

# --- vers ---------------------------------------------------------------------

_constraint_list(vers) := split(rest, "|") if {
	v := replace(vers, " ", "")
	startswith(lower(v), "vers:")
	slash := indexof(v, "/")
	slash >= 0
	rest := substring(v, slash + 1, -1)
} else := split(replace(vers, " ", ""), "|")

_parse_constraint(c) := {"op": op, "v": substring(c, count(op), -1)} if {
	some op in [">=", "<=", "!="]
	startswith(c, op)
} else := {"op": op, "v": substring(c, 1, -1)} if {
	some op in [">", "<", "="]
	startswith(c, op)
} else := {"op": "=", "v": c}

_constraints(vers) := [_parse_constraint(c) | some c in _constraint_list(vers); c != ""]

_lower_ops := {">", ">="}

_upper_ops := {"<", "<="}

_sat(c, ver) if {
	c.op == ">"
	semver.compare(ver, c.v) > 0
}

_sat(c, ver) if {
	c.op == ">="
	semver.compare(ver, c.v) >= 0
}

_sat(c, ver) if {
	c.op == "<"
	semver.compare(ver, c.v) < 0
}

_sat(c, ver) if {
	c.op == "<="
	semver.compare(ver, c.v) <= 0
}

_in_vers(vers, _) if {
	cs := _constraint_list(vers)
	"*" in cs
}

_in_vers(vers, ver) if {
	some c in _constraints(vers)
	c.op == "="
	c.v == ver
}

_in_vers(vers, ver) if {
	cs := _constraints(vers)
	not _excluded(cs, ver)
	_in_ranges(cs, ver)
}

_excluded(cs, ver) if {
	some c in cs
	c.op == "!="
	c.v == ver
}

_ranges(cs) := [c | some c in cs; c.op in (_lower_ops | _upper_ops)]

# only != constraints: everything not excluded
_in_ranges(cs, _) if {
	count(_ranges(cs)) == 0
	some c in cs
	c.op == "!="
}

# the lowest constraint is an upper bound: open below
_in_ranges(cs, ver) if {
	rs := _ranges(cs)
	some c in rs
	c.op in _upper_ops
	not _has_below(rs, c)
	_sat(c, ver)
}

# the highest constraint is a lower bound: open above
_in_ranges(cs, ver) if {
	rs := _ranges(cs)
	some c in rs
	c.op in _lower_ops
	not _has_above(rs, c)
	_sat(c, ver)
}

# a lower bound immediately followed by an upper bound: an interval
_in_ranges(cs, ver) if {
	rs := _ranges(cs)
	some lo in rs
	lo.op in _lower_ops
	some hi in rs
	hi.op in _upper_ops
	semver.compare(lo.v, hi.v) < 0
	not _has_between(rs, lo, hi)
	_sat(lo, ver)
	_sat(hi, ver)
}

_has_below(rs, c) if {
	some o in rs
	semver.compare(o.v, c.v) < 0
}

_has_above(rs, c) if {
	some o in rs
	semver.compare(o.v, c.v) > 0
}

_has_between(rs, lo, hi) if {
	some o in rs
	semver.compare(lo.v, o.v) < 0
	semver.compare(o.v, hi.v) < 0
}

# --- entries ------------------------------------------------------------------

_vers_of(entry) := v if {
	v := entry.vers
	is_string(v)
	v != ""
}

_entry_purl(entry) := p if {
	p := entry.purl
	is_string(p)
	startswith(lower(p), "pkg:")
}

# exact version in the entry's purl
_hit(entry) := label if {
	e := _split_purl(_entry_purl(entry))
	is_string(e.version)
	e.base == _pkg_purl.base
	e.version == _pkg_version
	label := _entry_purl(entry)
}

# version range
_hit(entry) := label if {
	e := _split_purl(_entry_purl(entry))
	e.version == null
	e.base == _pkg_purl.base
	vers := _vers_of(entry)
	_in_vers(vers, _pkg_version)
	label := sprintf("%s %s", [_entry_purl(entry), vers])
}

# every version
_hit(entry) := label if {
	e := _split_purl(_entry_purl(entry))
	e.version == null
	e.base == _pkg_purl.base
	not _vers_of(entry)
	label := sprintf("%s (all versions)", [_entry_purl(entry)])
}

_entry_reason(entry) := r if {
	r := entry.reason
	is_string(r)
	r != ""
} else := "no reason given"

_pkg := p if {
	p := input.v0.package.purl
	is_string(p)
	p != ""
} else := "package"

reason contains msg if {
	some entry in _entries
	is_object(entry)
	label := _hit(entry)
	msg := sprintf("%s is quarantined by entry %s: %s", [_pkg, label, _entry_reason(entry)])
}
