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

# published_at is read from input.v0.package.upstream_metadata.published_at.
# Only well-formed RFC 3339 timestamps (or bare YYYY-MM-DD dates, read as
# midnight UTC) between 1970 and 2199 with a real calendar date are parsed, so
# the time builtins never see input they would reject (regorus raises where OPA
# returns undefined). Anything else, null or missing: no match.
# A publication date in the future (clock skew, forged metadata) also matches.

default match := false

match if count(reason) > 0

default _min_days := 14

_min_days := d if {
	d := data.sbomgate.package_age.min_days
	is_number(d)
}

_ns_per_day := ((24 * 60) * 60) * 1000000000

_rfc3339 := `^(19[7-9][0-9]|2[01][0-9][0-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$`

_date_only := `^(19[7-9][0-9]|2[01][0-9][0-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$`

_published := ts if {
	ts := input.v0.package.upstream_metadata.published_at
	is_string(ts)
	regex.match(_rfc3339, ts)
} else := ts if {
	d := input.v0.package.upstream_metadata.published_at
	is_string(d)
	regex.match(_date_only, d)
	ts := concat("", [d, "T00:00:00Z"])
}

# day-of-month check with string comparison (two-digit strings compare like numbers)
_month_days := {
	"01": "31", "02": "28", "03": "31", "04": "30", "05": "31", "06": "30",
	"07": "31", "08": "31", "09": "30", "10": "31", "11": "30", "12": "31",
}

_leap(y) if {
	y % 4 == 0
	y % 100 != 0
}

_leap(y) if y % 400 == 0

_max_day(year, "02") := "29" if _leap(year)

_max_day(year, month) := _month_days[month] if {
	not month == "02"
} else := "28" if not _leap(year)

_valid_date(ts) if {
	year := to_number(substring(ts, 0, 4))
	day := substring(ts, 8, 2)
	day <= _max_day(year, substring(ts, 5, 2))
}

_published_ns := time.parse_rfc3339_ns(_published) if _valid_date(_published)

_age_ns := time.now_ns() - _published_ns

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
	_age_ns >= 0
	_age_ns < _min_days * _ns_per_day
	days := floor(_age_ns / _ns_per_day)
	msg := sprintf("%s was published %d %s ago (%s), less than the minimum age of %v days", [
		_pkg, days, _plural(days), _published, _min_days,
	])
}

reason contains msg if {
	_age_ns < 0
	msg := sprintf("%s has a publication date in the future (%s)", [_pkg, _published])
}
