package cloudsmith_test

import rego.v1

import data.cloudsmith

# 2024-06-15T12:00:00Z
_now := 1718452800000000000

_day := ((24 * 60) * 60) * 1000000000

_published(ts) := {"v0": {
	"package": {
		"name": "fresh",
		"version": "0.1.0",
		"format": "npm",
		"purl": "pkg:npm/fresh@0.1.0",
		"license": null,
		"upstream_metadata": {"published_at": ts},
	},
	"osv": null,
	"repository": {"name": "npm-trusted"},
	"sbom": null,
}}

_young(ts) if cloudsmith.match with input as _published(ts) with time.now_ns as _now

test_new_package_matches if _young("2024-06-10T12:00:00Z")

test_reason_gives_age if {
	r := cloudsmith.reason with input as _published("2024-06-10T11:00:00Z") with time.now_ns as _now
	r == {"pkg:npm/fresh@0.1.0 was published 5 days ago (2024-06-10T11:00:00Z), less than the minimum age of 14 days"}
}

test_reason_singular_day if {
	r := cloudsmith.reason with input as _published("2024-06-14T06:00:00Z") with time.now_ns as _now
	r == {"pkg:npm/fresh@0.1.0 was published 1 day ago (2024-06-14T06:00:00Z), less than the minimum age of 14 days"}
}

test_old_package_not_matched if not _young("2024-01-01T00:00:00Z")

test_boundary_exactly_min_days_not_matched if not _young("2024-06-01T12:00:00Z")

test_just_under_min_days_matched if _young("2024-06-01T12:00:01Z")

test_fractional_and_offset if {
	_young("2024-06-15T13:59:59.123456+02:00")
	not _young("2023-06-15T13:59:59.5-07:00")
}

test_date_only if {
	_young("2024-06-12")
	not _young("2020-06-12")
}

test_future_date_matches if {
	r := cloudsmith.reason with input as _published("2024-07-01T00:00:00Z") with time.now_ns as _now
	r == {"pkg:npm/fresh@0.1.0 has a publication date in the future (2024-07-01T00:00:00Z)"}
}

test_custom_min_days if {
	cloudsmith.match with input as _published("2024-05-01T00:00:00Z") with time.now_ns as _now with data.sbomgate.package_age.min_days as 90
	not cloudsmith.match with input as _published("2024-06-10T00:00:00Z") with time.now_ns as _now with data.sbomgate.package_age.min_days as 3
}

test_bad_min_days_falls_back if {
	cloudsmith.match with input as _published("2024-06-10T00:00:00Z") with time.now_ns as _now with data.sbomgate.package_age.min_days as "3"
}

test_null_published_at if not _young(null)

test_missing_upstream_metadata if {
	inp := {"v0": {"package": {"name": "x", "upstream_metadata": null}}}
	not cloudsmith.match with input as inp with time.now_ns as _now
	not cloudsmith.match with input as {} with time.now_ns as _now
	not cloudsmith.match with input as {"v0": {"package": null}} with time.now_ns as _now
}

test_garbage_timestamps_not_matched if {
	not _young(1718452800)
	not _young("")
	not _young("yesterday")
	not _young("2024-06-10 12:00:00")
	not _young("2024-13-01T00:00:00Z")
	not _young("2024-06-31T00:00:00Z")
	not _young("2023-02-29T00:00:00Z")
	not _young("2024-06-10T24:00:00Z")
	not _young("2024-06-10T12:00:60Z")
	not _young("2024-06-10T12:00:00+25:00")
	not _young("0001-01-01T00:00:00Z")
	not _young("9999-12-31T23:59:59Z")
	not _young("2024-06-10T12:00:00.1234567891Z")
}

test_leap_day_parsed if {
	cloudsmith.match with input as _published("2024-02-29T00:00:00Z") with time.now_ns as _now with data.sbomgate.package_age.min_days as 400
}

test_real_clock_old_package if {
	not cloudsmith.match with input as _published("2015-01-01T00:00:00Z")
}
