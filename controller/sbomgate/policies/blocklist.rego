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

# sbomgate matches the entries against the package's canonical identity (PEP 503
# names, PEP 440 versions, npm case and scopes, Maven group:artifact, Go module
# paths, Debian source packages, ...) once per package and hands those that name
# it to this policy as input.v0.lists.blocklist:
#   [{"entry": "npm:left-pad:1.3.0", "version": "1.3.0", "reason": null, "uncertain": null}]
# "uncertain" is set when the package's version could not be compared with the
# entry's: the package is denied all the same (a deny list never fails open),
# and the message says so. Entry syntax: controller/sbomgate/intel/lists.py and
# policies/data.example.yaml.

default match := false

# `match` reads only what decides it, not the package's name (which only the reason
# shows), so that its outcome is reused across packages (policy/outcomes.py): it holds
# exactly when `reason` has a message (a test checks both on every bundled policy's inputs).
match if count(_hits) > 0

_hits contains h if {
	hits := input.v0.lists.blocklist
	is_array(hits)
	some h in hits
	is_object(h)
	is_string(h.entry)
}

_uncertain(h) := u if {
	u := h.uncertain
	is_string(u)
	u != ""
}

reason contains msg if {
	some h in _hits
	not _uncertain(h)
	msg := sprintf("%s is on the package blocklist (entry %s)", [_pkg, h.entry])
}

reason contains msg if {
	some h in _hits
	u := _uncertain(h)
	msg := sprintf("%s is on the package blocklist (entry %s; %s, so the entry is taken to apply)", [_pkg, h.entry, u])
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
