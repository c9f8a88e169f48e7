package cloudsmith_test

import rego.v1

import data.cloudsmith

# sbomgate counts the age (published_days_ago) before evaluation; how timestamps are read
# is tested with the input builder (tests/unit/policy/test_input_ages.py).
_published(ts, days) := {"v0": {
	"package": {
		"name": "fresh",
		"version": "0.1.0",
		"format": "npm",
		"purl": "pkg:npm/fresh@0.1.0",
		"license": null,
		"upstream_metadata": {"published_at": ts, "published_days_ago": days},
	},
	"osv": null,
	"repository": {"name": "npm-trusted"},
	"sbom": null,
}}

_young(days) if cloudsmith.match with input as _published("2024-06-10T12:00:00Z", days)

test_new_package_matches if _young(5)

test_reason_gives_age if {
	r := cloudsmith.reason with input as _published("2024-06-10T11:00:00Z", 5)
	r == {"pkg:npm/fresh@0.1.0 was published 5 days ago (2024-06-10T11:00:00Z), less than the minimum age of 14 days"}
}

test_reason_singular_day if {
	r := cloudsmith.reason with input as _published("2024-06-14T06:00:00Z", 1)
	r == {"pkg:npm/fresh@0.1.0 was published 1 day ago (2024-06-14T06:00:00Z), less than the minimum age of 14 days"}
}

test_published_today if {
	r := cloudsmith.reason with input as _published("2024-06-15", 0)
	r == {"pkg:npm/fresh@0.1.0 was published 0 days ago (2024-06-15), less than the minimum age of 14 days"}
}

test_old_package_not_matched if not _young(3000)

test_boundary_exactly_min_days_not_matched if not _young(14)

test_just_under_min_days_matched if _young(13)

test_future_date_matches if {
	r := cloudsmith.reason with input as _published("2024-07-01T00:00:00Z", -16)
	r == {"pkg:npm/fresh@0.1.0 has a publication date in the future (2024-07-01T00:00:00Z)"}
}

test_later_today_is_future if _young(-1)

test_custom_min_days if {
	cloudsmith.match with input as _published("2024-05-01T00:00:00Z", 45) with data.sbomgate.package_age.min_days as 90
	not cloudsmith.match with input as _published("2024-06-10T00:00:00Z", 5) with data.sbomgate.package_age.min_days as 3
}

# Whole days against a fractional minimum: 14 days old is under 14.5, as 14 days and an hour is.
test_fractional_min_days_counts_up if {
	cloudsmith.match with input as _published("2024-06-01T00:00:00Z", 14) with data.sbomgate.package_age.min_days as 14.5
	not cloudsmith.match with input as _published("2024-06-01T00:00:00Z", 15) with data.sbomgate.package_age.min_days as 14.5
}

test_bad_min_days_falls_back if {
	cloudsmith.match with input as _published("2024-06-10T00:00:00Z", 5) with data.sbomgate.package_age.min_days as "3"
}

test_null_age_not_matched if {
	not _young(null)
	not cloudsmith.match with input as _published(null, null)
}

# A timestamp sbomgate could not read has no age: never young, never old.
test_unreadable_timestamp_not_matched if not cloudsmith.match with input as _published("2024-02-30T00:00:00Z", null)

test_age_not_a_number_not_matched if {
	not _young("5")
	not _young([5])
	not _young({"days": 5})
	not _young(true)
}

test_message_without_timestamp if {
	r := cloudsmith.reason with input as _published(null, 2)
	r == {"pkg:npm/fresh@0.1.0 was published 2 days ago (date not given), less than the minimum age of 14 days"}
}

test_missing_upstream_metadata if {
	inp := {"v0": {"package": {"name": "x", "upstream_metadata": null}}}
	not cloudsmith.match with input as inp
	not cloudsmith.match with input as {}
	not cloudsmith.match with input as {"v0": {"package": null}}
	not cloudsmith.match with input as {"v0": {"package": {"upstream_metadata": "x"}}}
}

test_name_without_purl if {
	inp := {"v0": {"package": {"name": "left-pad", "version": "9.9.9", "upstream_metadata": {"published_days_ago": 1}}}}
	cloudsmith.reason with input as inp == {"left-pad@9.9.9 was published 1 day ago (date not given), less than the minimum age of 14 days"}
}

test_fractional_age_is_whole_days if {
	r := cloudsmith.reason with input as _published("2024-06-02", 13.5)
	r == {"pkg:npm/fresh@0.1.0 was published 13 days ago (2024-06-02), less than the minimum age of 14 days"}
}
