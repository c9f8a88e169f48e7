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

# sbomgate matches the entries against the package's canonical identity (the
# same name and version every other lookup uses: PEP 503 names, PEP 440
# versions, npm case and scopes, "+" = "%2B", ...) and each ecosystem's own
# version order (univers), once per package, and hands the entries that name
# the package to this policy as input.v0.lists.quarantine:
#   [{"entry": "pkg:npm/event-stream vers:npm/>=3.3.6|<4.0.0",
#     "version": "vers:npm/>=3.3.6|<4.0.0", "reason": "flatmap-stream backdoor",
#     "uncertain": null}]
# "uncertain" is set when the package's version could not be compared with the
# entry's (no version, "latest", "1.0-evil!"): a deny list never fails open, so
# the package is quarantined, and the message says the version could not be
# compared. Entry syntax and matching: controller/sbomgate/intel/lists.py.

default match := false

# `match` reads only what decides it, not the package's name (which only the reason
# shows), so that its outcome is reused across packages (policy/outcomes.py): it holds
# exactly when `reason` has a message (a test checks both on every bundled policy's inputs).
match if count(_hits) > 0

_hits contains h if {
	hits := input.v0.lists.quarantine
	is_array(hits)
	some h in hits
	is_object(h)
	is_string(h.entry)
}

_entry_reason(h) := r if {
	r := h.reason
	is_string(r)
	r != ""
} else := "no reason given"

_uncertain(h) := u if {
	u := h.uncertain
	is_string(u)
	u != ""
}

_pkg := p if {
	p := input.v0.package.purl
	is_string(p)
	p != ""
} else := "package"

reason contains msg if {
	some h in _hits
	not _uncertain(h)
	msg := sprintf("%s is quarantined by entry %s: %s", [_pkg, h.entry, _entry_reason(h)])
}

reason contains msg if {
	some h in _hits
	u := _uncertain(h)
	msg := sprintf("%s is quarantined by entry %s: %s (%s, so the entry is taken to apply)", [_pkg, h.entry, _entry_reason(h), u])
}
