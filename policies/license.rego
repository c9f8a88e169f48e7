# METADATA
# title: Copyleft licenses
# description: >-
#   Deny packages whose SPDX license expression is not acceptable: by default any
#   license on the copyleft deny list (GPL, AGPL, SSPL, EUPL, OSL, CC-BY-SA, ...);
#   in allow-list mode (data.sbomgate.license.allow non-empty) any license not on
#   the allow list. OR alternatives are honoured: MIT OR GPL-3.0-only is acceptable.
#   Packages with no known SPDX license are not matched here.
# custom:
#   action: Deny
#   precedence: 70
#   terminal: false
package cloudsmith

import rego.v1

# SPDX expression handling (no recursion in Rego, so a bounded rewrite):
#   1. pad parentheses and split on whitespace; AND / OR / WITH are matched
#      case-insensitively; "X WITH exception" is treated as X;
#   2. each license id becomes T (acceptable) or F (not acceptable);
#   3. the innermost parenthesised groups are evaluated and replaced by T/F,
#      up to 6 levels of nesting; a flat group is T when some OR branch is all T
#      (AND binds tighter than OR, as in SPDX);
#   4. an expression that cannot be parsed this way (unbalanced parentheses,
#      missing operators, deeper nesting) is judged conservatively: it is
#      acceptable only when every license id in it is acceptable.
# A trailing "+" (or-later) is ignored when comparing ids. Ids NOASSERTION and
# NONE mean "unknown" and are not matched.

default match := false

match if count(reason) > 0

# Deny list entries: exact SPDX ids (case-insensitive) or prefixes ending in "*".
default _deny := [
	"GPL-*",
	"AGPL-*",
	"SSPL-*",
	"EUPL-*",
	"OSL-*",
	"CC-BY-SA-*",
	"CC-BY-NC-SA-*",
	"RPL-*",
	"Parity-*",
	"CPAL-1.0",
	"Sleepycat",
]

# non-string entries are dropped
_deny := [e | some e in d; is_string(e); e != ""] if {
	d := data.sbomgate.license.deny
	is_array(d)
}

default _allow := []

_allow := [e | some e in a; is_string(e); e != ""] if {
	a := data.sbomgate.license.allow
	is_array(a)
}

_allow_mode if count(_allow) > 0

_expr := e if {
	raw := input.v0.package.license.oss_license.spdx_identifier
	is_string(raw)
	e := trim_space(raw)
	e != ""
	not upper(e) in {"NOASSERTION", "NONE"}
}

_pkg := p if {
	p := input.v0.package.purl
	is_string(p)
	p != ""
} else := sprintf("%s@%s", [n, v]) if {
	n := input.v0.package.name
	is_string(n)
	v := input.v0.package.version
	is_string(v)
} else := n if {
	n := input.v0.package.name
	is_string(n)
} else := "package"

# --- license id matching ----------------------------------------------------

_entry_matches(entry, id) if {
	is_string(entry)
	endswith(entry, "*")
	startswith(upper(id), upper(trim_suffix(entry, "*")))
}

_entry_matches(entry, id) if {
	is_string(entry)
	not endswith(entry, "*")
	upper(trim_suffix(entry, "+")) == upper(trim_suffix(id, "+"))
}

# Deny/allow entries split once into exact ids and `*` prefixes, so checking an id is a set
# lookup and one prefix match rather than a function call per entry.
_exact(entries) := {upper(trim_suffix(e, "+")) | some e in entries; not endswith(e, "*")}

_prefixes(entries) := {upper(trim_suffix(e, "*")) | some e in entries; endswith(e, "*")}

_deny_exact := _exact(_deny)

_deny_prefixes := _prefixes(_deny)

_allow_exact := _exact(_allow)

_allow_prefixes := _prefixes(_allow)

_denied_id(id) if upper(trim_suffix(id, "+")) in _deny_exact

_denied_id(id) if strings.any_prefix_match(upper(id), _deny_prefixes)

_allowed_id(id) if upper(trim_suffix(id, "+")) in _allow_exact

_allowed_id(id) if strings.any_prefix_match(upper(id), _allow_prefixes)

_id_ok(id) if {
	_allow_mode
	_allowed_id(id)
}

_id_ok(id) if {
	not _allow_mode
	not _denied_id(id)
}

# --- tokenizer --------------------------------------------------------------

_tokens := [t |
	some t in regex.split(`\s+`, trim_space(strings.replace_n({"(": " ( ", ")": " ) "}, _expr)))
	t != ""
]

_keywords := {"AND", "OR", "WITH", "(", ")"}

_is_keyword(t) if upper(t) in _keywords

# the token after WITH is a license exception, not a license
_is_exception(i) if {
	i > 0
	upper(_tokens[i - 1]) == "WITH"
}

_ids contains t if {
	some i, t in _tokens
	not _is_keyword(t)
	not _is_exception(i)
}

_bad_ids contains id if {
	some id in _ids
	not _id_ok(id)
}

_symbol(t) := upper(t) if {
	upper(t) in {"AND", "OR"}
} else := t if {
	t in {"(", ")"}
} else := "T" if {
	_id_ok(t)
} else := "F"

_symbols := [s |
	some i, t in _tokens
	upper(t) != "WITH"
	not _is_exception(i)
	s := _symbol(t)
]

# --- evaluator --------------------------------------------------------------

_well_formed(s) if {
	toks := split(s, " ")
	count(toks) % 2 == 1
	every i, t in toks {
		_well_placed(i, t)
	}
}

_well_placed(i, t) if {
	i % 2 == 0
	t in {"T", "F"}
}

_well_placed(i, t) if {
	i % 2 == 1
	t in {"AND", "OR"}
}

_branch_true(branch) if {
	every a in split(branch, " AND ") {
		a == "T"
	}
}

# evaluates a flat (parenthesis-free) group of T/F joined by AND/OR
_flat(s) := "T" if {
	_well_formed(s)
	some branch in split(s, " OR ")
	_branch_true(branch)
} else := "F" if {
	_well_formed(s)
} else := "?"

# replaces every innermost "( ... )" group by its value
_reduce(s) := strings.replace_n(
	{g: v |
		some g in regex.find_n(`\( [^()]* \)`, s, -1)
		v := _flat(trim_suffix(trim_prefix(g, "( "), " )"))
	},
	s,
)

# Every license acceptable: the expression is, whatever its structure (the common case, and
# the cheap one; the structural reduction below is only needed when some license is not).
_value := "T" if {
	count(_bad_ids) == 0
} else := _flat(s6) if {
	s0 := concat(" ", _symbols)
	s1 := _reduce(s0)
	s2 := _reduce(s1)
	s3 := _reduce(s2)
	s4 := _reduce(s3)
	s5 := _reduce(s4)
	s6 := _reduce(s5)
}

_acceptable if _value == "T"

_acceptable if {
	_value == "?"
	count(_bad_ids) == 0
}

_or_note := "; no OR alternative is fully acceptable" if {
	some t in _tokens
	upper(t) == "OR"
} else := ""

_parse_note := " (expression could not be parsed: every license in it was checked)" if {
	_value == "?"
} else := ""

# --- reasons ----------------------------------------------------------------

reason contains msg if {
	not _allow_mode
	not _acceptable
	entries := {d | some d in _deny; some id in _bad_ids; _entry_matches(d, id)}
	msg := sprintf("license %s of %s is copyleft and denied: %s matched the license deny list (%s)%s%s", [
		_expr, _pkg, concat(", ", sort(_bad_ids)), concat(", ", sort(entries)), _or_note, _parse_note,
	])
}

reason contains msg if {
	_allow_mode
	not _acceptable
	msg := sprintf("license %s of %s is not allowed: %s not on the license allow list (allowed: %s)%s%s", [
		_expr, _pkg, concat(", ", sort(_bad_ids)), concat(", ", _allow), _or_note, _parse_note,
	])
}
