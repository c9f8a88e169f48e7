# METADATA
# title: Package allow list (exemptions)
# description: >-
#   Exempt packages listed in data.sbomgate.allow ("format:name" for every
#   version, "format:name:*", or "format:name:version") from every later policy.
#   Action Allow with terminal: a match short-circuits the remaining policies for
#   that package (Cloudsmith's AVAILABLE allowlist pattern). Empty by default, so
#   it never matches without data. Known malware (an OSV MAL- record) is exempted
#   only by an entry naming its version, and a package downloaded from an index
#   no trusted repository vouches for is not exempted.
# custom:
#   action: Allow
#   precedence: 10
#   terminal: true
package cloudsmith

import rego.v1

# sbomgate matches the entries against the package's canonical identity once per
# package and hands those that name it to this policy as input.v0.lists.allow:
#   [{"entry": "python:internal-tool:1.4.2", "version": "1.4.2", "reason": null, "uncertain": null}]
# ("version" is "*" for an entry without one). Exemptions are narrow: the
# version must be the entry's (never "could not be compared"), a Maven entry
# must name the group, and an entry without a version does not exempt a
# package that an OSV record calls malware (a name-only entry written for the
# good releases must not let a hijacked one through). Nor does an entry exempt
# a package whose purl says it was downloaded from somewhere
# (input.v0.identity.canonical.origin: repository_url, download_url) unless a
# trusted repository vouched for it (input.v0.repository): "requests 2.31.0 is
# fine" is not "requests 2.31.0 from any index is fine". Entry syntax:
# controller/sbomgate/intel/lists.py and policies/data.example.yaml.

default match := false

# `match` reads only what decides it, not the package's name (which only the reason
# shows), so that its outcome is reused across packages (policy/outcomes.py): it holds
# exactly when `reason` has a message (a test checks both on every bundled policy's inputs).
match if count(_exempting) > 0

_hits contains h if {
	hits := input.v0.lists.allow
	is_array(hits)
	some h in hits
	is_object(h)
	is_string(h.entry)
	not _uncertain(h)
}

_uncertain(h) if {
	u := h.uncertain
	is_string(u)
	u != ""
}

_pinned(h) if {
	v := h.version
	is_string(v)
	v != "*"
	v != ""
}

_mal_id(i) if {
	is_string(i)
	startswith(upper(i), "MAL-")
}

_malware if {
	osv := input.v0.osv
	is_array(osv)
	some r in osv
	is_object(r)
	_mal_id(r.id)
}

_malware if {
	osv := input.v0.osv
	is_array(osv)
	some r in osv
	is_object(r)
	aliases := r.aliases
	is_array(aliases)
	some i in aliases
	_mal_id(i)
}

_vouched if is_object(input.v0.repository)

_foreign_origin if {
	origin := input.v0.identity.canonical.origin
	is_object(origin)
	some key in ["repository_url", "download_url"]
	is_string(origin[key])
	not _vouched
}

_exempting contains h if {
	some h in _hits
	_pinned(h)
	not _foreign_origin
}

_exempting contains h if {
	some h in _hits
	not _pinned(h)
	not _malware
	not _foreign_origin
}

reason contains msg if {
	some h in _exempting
	msg := sprintf("%s is exempted by the allow list (entry %s): later policies are skipped", [_pkg, h.entry])
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
