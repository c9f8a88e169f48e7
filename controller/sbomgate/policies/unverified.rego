# METADATA
# title: Unverified packages
# description: >-
#   Deny packages that were not found in any trusted repository
#   (input.v0.repository is null): hallucinated, slopsquatted or typo'd
#   dependency names, and packages pulled from outside the trusted indexes.
#   Components without a package URL cannot be looked up and are denied too
#   (fail closed) unless data.sbomgate.unverified.allow_no_purl is true.
#   Packages tagged trusted-source-unavailable (no trusted repository could
#   be asked) are not matched: that is a fault, reported and denied as such.
#   When input.v0.package.typosquat_of names a popular package the name is a
#   near miss of, the reason asks "did you mean ...?".
# custom:
#   action: Deny
#   precedence: 50
#   terminal: true
package cloudsmith

import rego.v1

# Only an explicit null repository matches: a missing input.v0.repository means
# no trusted-repository lookup was made (none configured), which is not
# evidence against the package. The image subject (input.v0.image_subject) is
# never matched: images are verified by their attestation, not by a package
# index. Formats listed in data.sbomgate.unverified.exempt_formats (e.g. "deb",
# "rpm", "apk", "generic") are not matched; pypi/python and golang/go etc. are
# treated as the same format. Terminal: once a package is known to be
# unverifiable, vulnerability/license/age findings about it add only noise.

default match := false

# `match` reads only what decides it, not the package's name (which only the reason
# shows), so that its outcome is reused across packages (policy/outcomes.py): it holds
# exactly when `reason` has a message (a test checks both on every bundled policy's inputs).
match if {
	_unverified
	_has_purl
	not _exempted
}

match if {
	_unverified
	not _has_purl
	not _allow_no_purl
	not _exempted
}

default _allow_no_purl := false

_allow_no_purl := b if {
	b := data.sbomgate.unverified.allow_no_purl
	is_boolean(b)
}

default _exempt := set()

_exempt := {_norm_format(f) |
	some f in data.sbomgate.unverified.exempt_formats
	is_string(f)
} if {
	is_array(data.sbomgate.unverified.exempt_formats)
}

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

# The image-level evaluation: sbomgate sets input.v0.image_subject where it sets
# input.v0.sbom; reading the flag, not the SBOM, spares evaluating with the whole SBOM.
_is_image if input.v0.image_subject == true

# (`input.v0.repository == null` holds only when input.v0 is an object that has the key.)
_unverified if {
	input.v0.repository == null
	not _is_image
	not _source_unavailable
}

# No trusted repository could be asked (sbomgate reports that as a fault, which
# denies on its own): not evidence against the package.
_source_unavailable if {
	some tag in input.v0.package.tags
	tag.name == "trusted-source-unavailable"
}

# Whether the package has a purl, and its type, as sbomgate gives them
# (input.v0.identity.purl_type, null without a purl): the purl itself is read only for
# the message, so that `match` does not depend on the package's name.
_has_purl if is_string(input.v0.identity.purl_type)

_purl_type := t if {
	t := input.v0.identity.purl_type
	is_string(t)
	t != ""
}

_purl := p if {
	p := input.v0.package.purl
	is_string(p)
	trim_space(p) != ""
} else := "package"

_format := _norm_format(f) if {
	f := input.v0.package.format
	is_string(f)
	f != ""
} else := _norm_format(f) if {
	f := input.v0.identity.format
	is_string(f)
	f != ""
} else := _norm_format(_purl_type)

_exempted if _format in _exempt

_name := sprintf("%s@%s", [n, v]) if {
	n := input.v0.package.name
	is_string(n)
	n != ""
	v := input.v0.package.version
	is_string(v)
	v != ""
} else := n if {
	n := input.v0.package.name
	is_string(n)
	n != ""
} else := "unnamed component"

# input.v0.package.typosquat_of: the popular package this name is a near miss of
# (typo, squat, hallucinated/slopsquatted name), or null/absent when none.
_typosquat_of := t if {
	t := input.v0.package.typosquat_of
	is_string(t)
	trim_space(t) != ""
}

default _did_you_mean := ""

_did_you_mean := sprintf(" (did you mean %s? it may be a typosquat or a hallucinated/slopsquatted name)", [_typosquat_of])

# input.v0.identity.canonical.origin: the purl's qualifiers that say where the
# artifact came from (repository_url, download_url; distro for OS packages). A
# trusted repository vouches only for artifacts that came from it, so a purl
# naming another index is unverified whatever the trusted index holds.
default _origin := ""

_origin := sprintf(" (its purl says it came from %s)", [concat(", ", sort(places))]) if {
	origin := input.v0.identity.canonical.origin
	is_object(origin)
	count(origin) > 0
	places := {sprintf("%s=%s", [k, v]) | some k, v in origin; is_string(v)}
	count(places) > 0
}

reason contains msg if {
	_unverified
	_has_purl
	not _exempted
	msg := sprintf("%s was not found in any trusted repository%s: add it to the trusted repository after review, or fix the dependency name%s", [_purl, _origin, _did_you_mean])
}

reason contains msg if {
	_unverified
	not _has_purl
	not _allow_no_purl
	not _exempted
	msg := sprintf("component %s has no package URL: it cannot be verified against a trusted repository (add a purl to the SBOM, or set sbomgate.unverified.allow_no_purl)", [_name])
}
