# METADATA
# title: Recently published packages
# description: >-
#   Warn about packages published fewer than data.sbomgate.package_age.min_days
#   days ago (default 14): brand-new releases are where malicious and
#   slopsquatted packages live before advisories catch up.
# custom:
#   action: Warn
#   precedence: 80
#   terminal: false
package cloudsmith

import rego.v1

# The age is input.v0.package.upstream_metadata.published_days_ago: whole days
# from published_at to sbomgate's clock at evaluation, rounded down (negative:
# dated in the future), null when published_at is null or not a readable
# timestamp (RFC 3339 or a bare YYYY-MM-DD between 1970 and 2199 with a real
# calendar date). sbomgate counts it before evaluation, so this policy reads no
# clock and its outcome for a package can be reused for every image holding it.
# Null, missing or not a number: no match. A publication date in the future
# (clock skew, forged metadata) matches. A fractional min_days is compared with
# whole days, so it acts as the next whole number (the side that warns).

default match := false

# `match` reads only what decides it, not the package's name (which only the reason
# shows), so that its outcome is reused across packages (policy/outcomes.py): it holds
# exactly when `reason` has a message (a test checks both on every bundled policy's inputs).
match if {
	_days >= 0
	_days < _min_days
}

match if _days < 0

default _min_days := 14

_min_days := d if {
	d := data.sbomgate.package_age.min_days
	is_number(d)
}

# whole days (sbomgate writes whole days; a hand-written 13.5 is 13)
_days := floor(d) if {
	d := input.v0.package.upstream_metadata.published_days_ago
	is_number(d)
}

_published := p if {
	p := input.v0.package.upstream_metadata.published_at
	is_string(p)
} else := "date not given"

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

_plural(1) := "day"

_plural(n) := "days" if n != 1

reason contains msg if {
	_days >= 0
	_days < _min_days
	msg := sprintf("%s was published %d %s ago (%s), less than the minimum age of %v days", [
		_pkg, _days, _plural(_days), _published, _min_days,
	])
}

reason contains msg if {
	_days < 0
	msg := sprintf("%s has a publication date in the future (%s)", [_pkg, _published])
}
