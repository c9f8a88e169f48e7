package cloudsmith_test

import rego.v1

import data.cloudsmith

_lic(expr) := {"v0": {
	"package": {
		"name": "foo",
		"version": "1.0.0",
		"format": "python",
		"purl": "pkg:pypi/foo@1.0.0",
		"license": {"oss_license": {"spdx_identifier": expr}, "raw_license": expr},
	},
	"osv": null,
	"repository": {"name": "trusted"},
	"sbom": null,
}}

_denied(expr) if cloudsmith.match with input as _lic(expr)

test_permissive_single_allowed if not _denied("MIT")

test_apache_allowed if not _denied("Apache-2.0")

test_gpl_denied if _denied("GPL-3.0-only")

test_agpl_denied if _denied("AGPL-3.0-or-later")

test_sspl_denied if _denied("SSPL-1.0")

test_cc_by_sa_denied if _denied("CC-BY-SA-4.0")

test_lgpl_not_denied_by_default if not _denied("LGPL-2.1-only")

test_case_insensitive_id if _denied("gpl-2.0-only")

test_or_later_plus_denied if _denied("GPL-2.0+")

test_or_with_allowed_branch if not _denied("MIT OR GPL-3.0-only")

test_or_reversed if not _denied("GPL-3.0-only OR MIT")

test_or_all_denied if _denied("GPL-2.0-only OR AGPL-3.0-only")

test_and_denied if _denied("MIT AND GPL-3.0-only")

test_and_all_ok if not _denied("MIT AND Apache-2.0 AND BSD-3-Clause")

test_parenthesised_and if not _denied("(Apache-2.0 AND BSD-3-Clause)")

test_paren_or_inside_and_ok if not _denied("MIT AND (Apache-2.0 OR GPL-3.0-only)")

test_paren_or_inside_and_denied if _denied("GPL-3.0-only AND (Apache-2.0 OR MIT)")

test_paren_and_inside_or_ok if not _denied("(MIT AND GPL-2.0-only) OR BSD-2-Clause")

test_paren_and_inside_or_denied if _denied("(MIT AND GPL-2.0-only) OR (BSD-2-Clause AND AGPL-3.0-only)")

test_precedence_and_binds_tighter if not _denied("MIT OR GPL-2.0-only AND Apache-2.0")

test_precedence_and_binds_tighter_denied if _denied("GPL-2.0-only OR MIT AND AGPL-3.0-only")

test_nested_parens if not _denied("((MIT OR GPL-2.0-only) AND (Apache-2.0 OR (BSD-3-Clause AND ISC)))")

test_no_space_parens if not _denied("(MIT OR GPL-3.0-only)AND(Apache-2.0)")

test_with_exception_is_base_license if _denied("GPL-2.0-or-later WITH Classpath-exception-2.0")

test_with_exception_or if not _denied("GPL-2.0-only WITH Classpath-exception-2.0 OR MIT")

test_exception_name_not_checked if {
	not cloudsmith.match with input as _lic("Apache-2.0 WITH GPL-exception-foo")
}

test_lowercase_operators if not _denied("mit or gpl-3.0-only")

test_malformed_all_ok if not _denied("MIT Apache-2.0 (")

test_malformed_with_denied if _denied("MIT GPL-3.0-only (")

test_null_license_not_matched if {
	inp := {"v0": {"package": {"name": "foo", "version": "1.0.0", "purl": "pkg:pypi/foo@1.0.0", "license": null}}}
	not cloudsmith.match with input as inp
	count(cloudsmith.reason) == 0 with input as inp
}

test_null_oss_license_not_matched if {
	inp := {"v0": {"package": {"name": "foo", "license": {"oss_license": null, "raw_license": "GPL"}}}}
	not cloudsmith.match with input as inp
}

test_non_string_identifier_not_matched if {
	inp := {"v0": {"package": {"name": "foo", "license": {"oss_license": {"spdx_identifier": 42}}}}}
	not cloudsmith.match with input as inp
}

test_noassertion_not_matched if not _denied("NOASSERTION")

test_empty_input_not_matched if {
	not cloudsmith.match with input as {}
}

test_null_v0_not_matched if {
	not cloudsmith.match with input as {"v0": null}
}

test_reason_names_package_and_license if {
	r := cloudsmith.reason with input as _lic("MIT AND GPL-3.0-only")
	r == {"license MIT AND GPL-3.0-only of pkg:pypi/foo@1.0.0 is copyleft and denied: GPL-3.0-only matched the license deny list (GPL-*)"}
}

test_reason_or_note if {
	r := cloudsmith.reason with input as _lic("GPL-2.0-only OR AGPL-3.0-only")
	r == {"license GPL-2.0-only OR AGPL-3.0-only of pkg:pypi/foo@1.0.0 is copyleft and denied: AGPL-3.0-only, GPL-2.0-only matched the license deny list (AGPL-*, GPL-*); no OR alternative is fully acceptable"}
}

test_custom_deny_list_replaces_default if {
	not cloudsmith.match with input as _lic("GPL-3.0-only") with data.sbomgate.license.deny as ["MPL-2.0"]
	cloudsmith.match with input as _lic("MPL-2.0") with data.sbomgate.license.deny as ["MPL-2.0"]
}

test_custom_deny_prefix_lgpl if {
	cloudsmith.match with input as _lic("LGPL-2.1-only") with data.sbomgate.license.deny as ["GPL-*", "LGPL-*"]
}

test_allow_mode_denies_unlisted if {
	cloudsmith.match with input as _lic("ISC") with data.sbomgate.license.allow as ["MIT", "Apache-2.0"]
}

test_allow_mode_accepts_listed if {
	not cloudsmith.match with input as _lic("Apache-2.0") with data.sbomgate.license.allow as ["MIT", "Apache-2.0"]
}

test_allow_mode_or if {
	not cloudsmith.match with input as _lic("ISC OR MIT") with data.sbomgate.license.allow as ["MIT", "Apache-2.0"]
}

test_allow_mode_and if {
	cloudsmith.match with input as _lic("ISC AND MIT") with data.sbomgate.license.allow as ["MIT", "Apache-2.0"]
}

test_allow_mode_prefix if {
	not cloudsmith.match with input as _lic("BSD-3-Clause") with data.sbomgate.license.allow as ["MIT", "BSD-*"]
}

test_allow_mode_reason if {
	r := cloudsmith.reason with input as _lic("ISC") with data.sbomgate.license.allow as ["MIT", "Apache-2.0"]
	r == {"license ISC of pkg:pypi/foo@1.0.0 is not allowed: ISC not on the license allow list (allowed: MIT, Apache-2.0)"}
}

test_empty_allow_list_is_deny_mode if {
	cloudsmith.match with input as _lic("GPL-3.0-only") with data.sbomgate.license.allow as []
	not cloudsmith.match with input as _lic("ISC") with data.sbomgate.license.allow as []
}

test_bad_data_types_ignored if {
	cloudsmith.match with input as _lic("GPL-3.0-only") with data.sbomgate.license.deny as "oops"
	not cloudsmith.match with input as _lic("MIT") with data.sbomgate.license.deny as [1, null, "GPL-*"]
}

test_allow_list_of_junk_is_not_allow_mode if {
	not cloudsmith.match with input as _lic("ISC") with data.sbomgate.license.allow as [null, 1, ""]
	cloudsmith.match with input as _lic("GPL-3.0-only") with data.sbomgate.license.allow as [null, 1, ""]
}

test_reason_without_purl if {
	inp := {"v0": {"package": {"name": "foo", "version": "2.0", "license": {"oss_license": {"spdx_identifier": "AGPL-3.0-only"}}}}}
	r := cloudsmith.reason with input as inp
	r == {"license AGPL-3.0-only of foo@2.0 is copyleft and denied: AGPL-3.0-only matched the license deny list (AGPL-*)"}
}
