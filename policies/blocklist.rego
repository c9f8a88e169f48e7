# METADATA
# title: Package blocklist
# description: >-
#   Deny packages listed in data.sbomgate.blocklist. Entries are
#   "format:name:version" (one version), "format:name:*" or "format:name"
#   (every version). Empty by default.
# custom:
#   action: Deny
#   precedence: 40
#   terminal: false
package cloudsmith

import rego.v1

# Entry syntax: the first ":"-separated field is the format, the last one is the
# version when there are three or more fields ("*" = every version), and what is
# in between is the name (so "maven:org.example:lib:1.0" names org.example:lib).
# A name containing ":" must therefore always carry a version (use "*").
# Formats are compared after aliasing purl types to formats (pypi -> python,
# golang -> go, ...); names case-insensitively, Python names PEP 503-normalised.
# A package is known by its name and, when the identity has a namespace, by
# "namespace/name" and "namespace:name" too.

default match := false

match if count(reason) > 0

default _entries := []

_entries := e if {
	e := data.sbomgate.blocklist
	is_array(e)
}

reason contains msg if {
	some entry in _entries
	_listed(entry)
	msg := sprintf("%s is on the package blocklist (entry %s)", [_pkg, entry])
}

# --- shared package matching (same code in allow_list.rego) -----------------

_format_aliases := {
	"pypi": "python",
	"golang": "go",
	"ruby": "gem",
	"rubygems": "gem",
	"alpine": "apk",
	"crates": "cargo",
	"oci": "docker",
}

_norm_format(f) := object.get(_format_aliases, lower(f), lower(f))

_norm_name("python", n) := regex.replace(lower(n), `[-_.]+`, "-")

_norm_name(f, n) := lower(n) if f != "python"

_purl_type := t if {
	p := input.v0.package.purl
	is_string(p)
	startswith(p, "pkg:")
	t := split(trim_prefix(p, "pkg:"), "/")[0]
	t != ""
}

_pkg_format := _norm_format(f) if {
	f := input.v0.package.format
	is_string(f)
	f != ""
} else := _norm_format(f) if {
	f := input.v0.identity.format
	is_string(f)
	f != ""
} else := _norm_format(_purl_type)

_raw_names contains n if {
	n := input.v0.package.name
	is_string(n)
	n != ""
}

_raw_names contains n if {
	n := input.v0.identity.name
	is_string(n)
	n != ""
}

_raw_names contains sprintf("%s%s%s", [ns, sep, n]) if {
	ns := input.v0.identity.namespace
	is_string(ns)
	ns != ""
	n := input.v0.identity.name
	is_string(n)
	n != ""
	some sep in ["/", ":"]
}

_pkg_names contains _norm_name(_pkg_format, n) if some n in _raw_names

default _pkg_version := ""

_pkg_version := v if {
	v := input.v0.package.version
	is_string(v)
} else := v if {
	v := input.v0.identity.version
	is_string(v)
}

# entry -> {"format", "name", "version"}
_parse_entry(entry) := {"format": _norm_format(parts[0]), "name": parts[1], "version": "*"} if {
	parts := split(trim_space(entry), ":")
	count(parts) == 2
}

_parse_entry(entry) := {"format": _norm_format(parts[0]), "name": name, "version": parts[n - 1]} if {
	parts := split(trim_space(entry), ":")
	n := count(parts)
	n > 2
	name := concat(":", array.slice(parts, 1, n - 1))
}

_version_matches(want, _) if want == "*"

_version_matches(want, have) if {
	want != "*"
	want == have
}

_listed(entry) if {
	is_string(entry)
	e := _parse_entry(entry)
	e.format == _pkg_format
	e.name != ""
	_norm_name(_pkg_format, e.name) in _pkg_names
	_version_matches(e.version, _pkg_version)
}

_pkg := p if {
	p := input.v0.package.purl
	is_string(p)
	p != ""
} else := sprintf("%s:%s@%s", [_pkg_format, n, _pkg_version]) if {
	n := input.v0.package.name
	is_string(n)
} else := "package"
