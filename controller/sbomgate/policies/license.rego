# METADATA
# title: Copyleft licenses
# description: >-
#   Deny packages whose SPDX license expression is not acceptable: by default any
#   license on the copyleft deny list (GPL, AGPL, SSPL, EUPL, OSL, CC-BY-SA, ...);
#   in allow-list mode (data.sbomgate.license.allow non-empty) any license not on
#   the allow list, and any unknown license. OR alternatives are honoured (MIT OR
#   GPL-3.0-only is acceptable), but an unknown license (NOASSERTION, NONE, a
#   LicenseRef not on the list in use) is never an acceptable alternative.
#   A package with no license information (none given, NOASSERTION, NONE) is
#   unknown too; the image subject's own license is judged only when given.
#   The operating system's own packages (deb, rpm, apk, alpm, ...) are not
#   judged unless data.sbomgate.license.os_packages is true: a base image's
#   bash, coreutils and libc are GPL, and a license policy for application
#   dependencies is not about the distribution it runs on.
# custom:
#   action: Deny
#   precedence: 70
#   terminal: false
package cloudsmith

import rego.v1

# SPDX expression handling (no recursion in Rego, so a bounded rewrite):
#   1. pad parentheses and split on whitespace; AND / OR / WITH are matched
#      case-insensitively; "X WITH exception" is treated as X (sbomgate writes
#      any other use of WITH as an AND of what it names and an unknown marker).
#      sbomgate does this step once per distinct expression before evaluation
#      (input.v0.package.license.spdx_terms); it is done here only when that is
#      absent;
#   2. each license id becomes T (acceptable), F (not acceptable) or U
#      (unknown: NOASSERTION, NONE, or a LicenseRef-/DocumentRef- that the list
#      in use does not name; sbomgate writes every license that is not on the
#      SPDX list as a LicenseRef);
#   3. the innermost parenthesised groups are evaluated and replaced by T/F/U,
#      up to 6 levels of nesting; in a flat group AND binds tighter than OR (as
#      in SPDX): an AND is F if any part is F, else U if any is U, else T; an OR
#      is T if any branch is T, else F if any is F, else U. So an unknown
#      alternative never makes a denied license acceptable;
#   4. an expression that cannot be parsed this way (unbalanced parentheses,
#      missing operators, deeper nesting) is judged conservatively: F if any
#      license in it is F, else U if any is U, else T.
# T is accepted and F denied. U is denied in allow-list mode (an allow list
# cannot allow what it cannot name; list a LicenseRef to allow it) and, in
# deny-list mode, when data.sbomgate.license.deny_unknown is true.
# A trailing "+" (or-later) is ignored when comparing ids. A package whose
# expression is missing, or only NOASSERTION or NONE, has no license information:
# unknown, and denied when unknown licenses are (never for the image subject,
# whose own license SBOMs seldom state).

default match := false

# `match` reads only what decides it, not the package's name (which only the reason
# shows), so that its outcome is reused across packages (policy/outcomes.py): it holds
# exactly when `reason` has a message (a test checks both on every bundled policy's inputs).
match if {
	_judged
	_verdict == "F"
}

match if {
	_judged
	_deny_unknown
	_verdict == "U"
}

match if {
	_judged
	_deny_unknown
	_missing
}

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

# The purl types (and format slugs) of a distribution's own packages.
_os_formats := {"deb", "rpm", "apk", "alpine", "alpm", "ebuild", "opkg"}

default _judge_os_packages := false

_judge_os_packages if data.sbomgate.license.os_packages == true

_os_package if {
	format := input.v0.package.format
	is_string(format)
	lower(format) in _os_formats
}

# The purl's type, as sbomgate gives it (input.v0.identity.purl_type: the purl is not
# read here, so that `match` does not depend on the package's name).
_os_package if input.v0.identity.purl_type in _os_formats

# Judged: every package, but the distribution's own only when asked for.
_judged if not _os_package

_judged if _judge_os_packages

default _deny_unknown := false

_deny_unknown if _allow_mode

_deny_unknown if data.sbomgate.license.deny_unknown == true

_expr := e if {
	raw := input.v0.package.license.oss_license.spdx_identifier
	is_string(raw)
	e := trim_space(raw)
	e != ""
	not upper(e) in {"NOASSERTION", "NONE"}
}

# The image-level evaluation: sbomgate sets input.v0.image_subject where it sets
# input.v0.sbom; reading the flag, not the SBOM, spares evaluating with the whole SBOM.
_is_subject if input.v0.image_subject == true

# A package (not the image subject) that states no license. A package object always
# carries `license` (null when nothing is known): reading that field rather than the whole
# object keeps `match` independent of the package's name.
_missing if {
	_ := input.v0.package.license
	not _is_subject
	not _expr
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

# The deny list's entries with what each compares (an id's start for a `*` entry, the id
# without a trailing `+` otherwise): data alone, so computed once per engine (policy/_fold.py),
# and the entries an id matched are found without a function call per entry.
_deny_prefix_entries := [[e, upper(trim_suffix(e, "*"))] | some e in _deny; endswith(e, "*")]

_deny_exact_entries := [[e, upper(trim_suffix(e, "+"))] | some e in _deny; not endswith(e, "*")]

# The deny list's entries that a denied id matched (what the reason names).
_matched_entries contains entry if {
	some id in _bad_ids
	u := upper(id)
	some pair in _deny_prefix_entries
	startswith(u, pair[1])
	entry := pair[0]
}

_matched_entries contains entry if {
	some id in _bad_ids
	u := upper(trim_suffix(id, "+"))
	some pair in _deny_exact_entries
	u == pair[1]
	entry := pair[0]
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

# Named by the list in use: a LicenseRef an organisation allows (or denies) is known.
_listed(id) if {
	_allow_mode
	_allowed_id(id)
}

_listed(id) if {
	not _allow_mode
	_denied_id(id)
}

_unknown_id(id) if upper(id) in {"NOASSERTION", "NONE"}

_unknown_id(id) if {
	startswith(upper(id), "LICENSEREF-")
	not _listed(id)
}

_unknown_id(id) if {
	startswith(upper(id), "DOCUMENTREF-")
	not _listed(id)
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

# The expression's terms (parentheses, AND, OR and license ids; each WITH and its exception
# left out): as sbomgate split it before evaluation (input.v0.package.license.spdx_terms),
# else the expression tokenised here the same way (an input sbomgate did not build).
_terms := t if {
	_expr
	t := input.v0.package.license.spdx_terms
	is_array(t)
	every x in t {
		is_string(x)
	}
} else := [t |
	some i, t in _tokens
	upper(t) != "WITH"
	not _is_exception(i)
]

_ids contains t if {
	some t in _terms
	not _is_keyword(t)
}

_unknown_ids contains id if {
	some id in _ids
	_unknown_id(id)
}

_bad_ids contains id if {
	some id in _ids
	not _unknown_id(id)
	not _id_ok(id)
}

_symbol(t) := upper(t) if {
	upper(t) in {"AND", "OR"}
} else := t if {
	t in {"(", ")"}
} else := "U" if {
	# A license id: as _unknown_ids and _bad_ids judged it (a set lookup, not judged again).
	t in _unknown_ids
} else := "F" if {
	t in _bad_ids
} else := "T" if {
	t in _ids
} else := "U" if {
	# A keyword that is no operator here (WITH in spdx_terms given by another builder).
	_unknown_id(t)
} else := "T" if {
	_id_ok(t)
} else := "F"

_symbols := [_symbol(t) | some t in _terms]

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
	t in {"T", "F", "U"}
}

_well_placed(i, t) if {
	i % 2 == 1
	t in {"AND", "OR"}
}

_and_value(branch) := "F" if {
	"F" in split(branch, " AND ")
} else := "U" if {
	"U" in split(branch, " AND ")
} else := "T"

_or_value(values) := "T" if {
	"T" in values
} else := "F" if {
	"F" in values
} else := "U"

# evaluates a flat (parenthesis-free) group of T/F/U joined by AND/OR
_flat(s) := _or_value({_and_value(branch) | some branch in split(s, " OR ")}) if {
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
	count(_unknown_ids) == 0
} else := v if {
	# One license: its own value (what _flat gives a lone T, F or U), the common case.
	count(_symbols) == 1
	v := _symbols[0]
	v in {"T", "F", "U"}
} else := _flat(s0) if {
	# Without a parenthesis there is nothing to reduce (each _reduce would return s0).
	s0 := concat(" ", _symbols)
	not contains(s0, "(")
} else := _flat(s6) if {
	s0 := concat(" ", _symbols)
	s1 := _reduce(s0)
	s2 := _reduce(s1)
	s3 := _reduce(s2)
	s4 := _reduce(s3)
	s5 := _reduce(s4)
	s6 := _reduce(s5)
}

# T, F or U; an expression that could not be parsed is judged by its worst license.
_verdict := _value if {
	_value != "?"
} else := "F" if {
	count(_bad_ids) > 0
} else := "U" if {
	count(_unknown_ids) > 0
} else := "T"

_or_note := "; no OR alternative is fully acceptable" if {
	some t in _terms
	upper(t) == "OR"
} else := ""

_unknown_note := sprintf("; an unknown license (%s) is not an acceptable alternative", [concat(", ", sort(_unknown_ids))]) if {
	count(_unknown_ids) > 0
	_or_note != ""
} else := ""

_parse_note := " (expression could not be parsed: every license in it was checked)" if {
	_value == "?"
} else := ""

# What the SBOM said, when sbomgate read it as something else ("GPLv3" -> GPL-3.0-only).
_written := sprintf(" (written \"%s\")", [w]) if {
	raw := input.v0.package.license.raw_license
	is_string(raw)
	w := trim_space(raw)
	w != ""
	w != _expr
	count(w) <= 200
} else := ""

_unknown_why := "unknown licenses are denied in allow-list mode" if {
	_allow_mode
} else := "data.sbomgate.license.deny_unknown is set"

# --- reasons ----------------------------------------------------------------

reason contains msg if {
	_judged
	not _allow_mode
	_verdict == "F"
		msg := sprintf("license %s%s of %s is copyleft and denied: %s matched the license deny list (%s)%s%s%s", [
		_expr, _written, _pkg, concat(", ", sort(_bad_ids)), concat(", ", sort(_matched_entries)),
		_or_note, _unknown_note, _parse_note,
	])
}

reason contains msg if {
	_judged
	_allow_mode
	_verdict == "F"
	msg := sprintf("license %s%s of %s is not allowed: %s not on the license allow list (allowed: %s)%s%s%s", [
		_expr, _written, _pkg, concat(", ", sort(_bad_ids)), concat(", ", _allow),
		_or_note, _unknown_note, _parse_note,
	])
}

reason contains msg if {
	_judged
	_deny_unknown
	_verdict == "U"
	msg := sprintf("license %s%s of %s is unknown: %s %s on the SPDX list or on the license list in use, and %s%s", [
		_expr, _written, _pkg, concat(", ", sort(_unknown_ids)), _is_are(_unknown_ids), _unknown_why, _parse_note,
	])
}

reason contains msg if {
	_judged
	_deny_unknown
	_missing
	msg := sprintf("license of %s is unknown: the SBOM states none%s, and %s", [_pkg, _stated, _unknown_why])
}

_stated := sprintf(" (it says \"%s\")", [w]) if {
	raw := input.v0.package.license.raw_license
	is_string(raw)
	w := trim_space(raw)
	w != ""
	count(w) <= 200
} else := ""

_is_are(ids) := "is not a license" if count(ids) == 1

_is_are(ids) := "are not licenses" if count(ids) != 1
