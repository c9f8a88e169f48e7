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

test_reason_names_every_entry_an_id_matched if {
	# Exact entries compare without case and a trailing "+"; a `*` entry by the id's start.
	r := cloudsmith.reason with input as _lic("MPL-2.0+") with data.sbomgate.license.deny as ["mpl-2.0", "MPL-2.0+", "MPL-*", "MPL-1.1", "Apache-*"]
	r == {"license MPL-2.0+ of pkg:pypi/foo@1.0.0 is copyleft and denied: MPL-2.0+ matched the license deny list (MPL-*, MPL-2.0+, mpl-2.0)"}
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

# --- unknown licenses (NOASSERTION, NONE, LicenseRef-...) -------------------

_lic_raw(expr, raw) := {"v0": {"package": {
	"name": "foo",
	"version": "1.0.0",
	"purl": "pkg:pypi/foo@1.0.0",
	"license": {"oss_license": {"spdx_identifier": expr}, "raw_license": raw},
}}}

_allow_list := ["MIT", "Apache-2.0", "BSD-*"]

_denied_allow_mode(expr) if cloudsmith.match with input as _lic(expr) with data.sbomgate.license.allow as _allow_list

_denied_strict_deny_mode(expr) if cloudsmith.match with input as _lic(expr) with data.sbomgate.license.deny_unknown as true

test_or_noassertion_never_rescues_a_denied_license if {
	_denied("GPL-3.0-only OR NOASSERTION")
	_denied("NOASSERTION OR GPL-3.0-only")
	_denied("AGPL-3.0-only OR NONE")
	_denied("noassertion or gpl-2.0-or-later")
	_denied("(GPL-3.0-only OR NOASSERTION) AND MIT")
	_denied("GPL-3.0-only OR (NOASSERTION AND MIT)")
}

test_or_unknown_ref_never_rescues_a_denied_license if {
	_denied("GPL-3.0-only OR LicenseRef-GPLv3-but-free")
	_denied("LicenseRef-x OR AGPL-3.0-only")
	_denied("SSPL-1.0 OR DocumentRef-a:LicenseRef-b")
}

test_or_unknown_in_allow_mode_is_denied if {
	_denied_allow_mode("ISC OR NOASSERTION")
	_denied_allow_mode("GPL-3.0-only OR LicenseRef-x")
}

test_or_with_a_known_acceptable_branch_is_accepted if {
	not _denied("MIT OR NOASSERTION")
	not _denied_allow_mode("MIT OR NOASSERTION")
	not _denied_allow_mode("LicenseRef-x OR Apache-2.0")
	not _denied_strict_deny_mode("NONE OR MIT")
}

test_unknown_alone_is_not_denied_in_deny_mode if {
	not _denied("LicenseRef-Acme-Internal")
	not _denied("MIT AND NOASSERTION")
	not _denied("LicenseRef-a OR LicenseRef-b")
	not _denied("DocumentRef-spdx-tool-1.2:LicenseRef-MIT-Style-2")
}

test_unknown_is_denied_in_allow_mode if {
	_denied_allow_mode("LicenseRef-Acme-Internal")
	_denied_allow_mode("MIT AND NOASSERTION")
	_denied_allow_mode("MIT AND NONE")
	_denied_allow_mode("LicenseRef-a OR LicenseRef-b")
	_denied_allow_mode("DocumentRef-spdx-tool-1.2:LicenseRef-MIT-Style-2")
}

test_deny_unknown_in_deny_mode if {
	_denied_strict_deny_mode("LicenseRef-Acme-Internal")
	_denied_strict_deny_mode("MIT AND NOASSERTION")
	not _denied_strict_deny_mode("MIT")
	not _denied_strict_deny_mode("MIT OR LicenseRef-x")
}

test_deny_unknown_not_boolean_ignored if {
	not cloudsmith.match with input as _lic("LicenseRef-x") with data.sbomgate.license.deny_unknown as "yes"
}

test_listed_license_ref_is_known if {
	not cloudsmith.match with input as _lic("LicenseRef-Acme-Internal AND MIT") with data.sbomgate.license.allow as ["MIT", "LicenseRef-Acme-*"]
	cloudsmith.match with input as _lic("LicenseRef-Acme-Internal") with data.sbomgate.license.deny as ["LicenseRef-Acme-Internal"]
}

test_invalid_with_marker if {
	# sbomgate writes "MIT WITH GPL-3.0-only" so: every license named, and unknown
	_denied("MIT AND GPL-3.0-only AND LicenseRef-sbomgate-invalid-WITH")
	_denied_allow_mode("MIT AND GPL-3.0-only AND LicenseRef-sbomgate-invalid-WITH")
	_denied_allow_mode("MIT AND Apache-2.0 AND LicenseRef-sbomgate-invalid-WITH")
	not _denied("MIT AND Apache-2.0 AND LicenseRef-sbomgate-invalid-WITH")
	_denied_strict_deny_mode("MIT AND Apache-2.0 AND LicenseRef-sbomgate-invalid-WITH")
	not _denied("BSD-2-Clause OR (MIT AND Apache-2.0 AND LicenseRef-sbomgate-invalid-WITH)")
}

test_malformed_with_unknown if {
	not _denied("MIT LicenseRef-x (")
	_denied_allow_mode("MIT LicenseRef-x (")
	_denied("LicenseRef-x GPL-3.0-only (")
}

test_unknown_reason_allow_mode if {
	r := cloudsmith.reason with input as _lic("MIT AND NOASSERTION") with data.sbomgate.license.allow as ["MIT"]
	r == {"license MIT AND NOASSERTION of pkg:pypi/foo@1.0.0 is unknown: NOASSERTION is not a license on the SPDX list or on the license list in use, and unknown licenses are denied in allow-list mode"}
}

test_unknown_reason_deny_unknown if {
	r := cloudsmith.reason with input as _lic("LicenseRef-a AND LicenseRef-b") with data.sbomgate.license.deny_unknown as true
	r == {"license LicenseRef-a AND LicenseRef-b of pkg:pypi/foo@1.0.0 is unknown: LicenseRef-a, LicenseRef-b are not licenses on the SPDX list or on the license list in use, and data.sbomgate.license.deny_unknown is set"}
}

test_reason_or_unknown_note if {
	r := cloudsmith.reason with input as _lic("GPL-3.0-only OR NOASSERTION")
	r == {"license GPL-3.0-only OR NOASSERTION of pkg:pypi/foo@1.0.0 is copyleft and denied: GPL-3.0-only matched the license deny list (GPL-*); no OR alternative is fully acceptable; an unknown license (NOASSERTION) is not an acceptable alternative"}
}

test_reason_says_what_was_written if {
	r := cloudsmith.reason with input as _lic_raw("GPL-3.0-only", "GNU General Public License v3.0")
	r == {"license GPL-3.0-only (written \"GNU General Public License v3.0\") of pkg:pypi/foo@1.0.0 is copyleft and denied: GPL-3.0-only matched the license deny list (GPL-*)"}
}

test_reason_written_omitted_when_same_or_missing if {
	r := cloudsmith.reason with input as _lic_raw("AGPL-3.0-only", null)
	r == {"license AGPL-3.0-only of pkg:pypi/foo@1.0.0 is copyleft and denied: AGPL-3.0-only matched the license deny list (AGPL-*)"}
}

# --- no license information ---------------------------------------------------

_no_licence(license) := {"v0": {
	"package": {"name": "foo", "version": "1.0.0", "purl": "pkg:pypi/foo@1.0.0", "license": license},
	"sbom": null,
}}

test_missing_license_denied_in_allow_mode if {
	cloudsmith.match with input as _no_licence(null) with data.sbomgate.license.allow as _allow_list
	cloudsmith.match with input as _no_licence({"oss_license": null, "raw_license": "NOASSERTION"}) with data.sbomgate.license.allow as _allow_list
	_denied_allow_mode("NOASSERTION")
	_denied_allow_mode("NONE")
	_denied_allow_mode("")
	cloudsmith.match with input as _no_licence({"oss_license": {"spdx_identifier": 42}}) with data.sbomgate.license.allow as _allow_list
}

test_missing_license_not_denied_in_deny_mode if {
	not cloudsmith.match with input as _no_licence(null)
	not _denied("NOASSERTION")
	not _denied("NONE")
}

test_missing_license_denied_with_deny_unknown if {
	cloudsmith.match with input as _no_licence(null) with data.sbomgate.license.deny_unknown as true
	_denied_strict_deny_mode("NOASSERTION")
}

test_missing_license_of_the_image_subject_is_not_judged if {
	subject := {"v0": {"package": {"name": "app", "license": null}, "sbom": {"bomFormat": "CycloneDX"}, "image_subject": true}}
	not cloudsmith.match with input as subject with data.sbomgate.license.allow as _allow_list
	not cloudsmith.match with input as subject with data.sbomgate.license.deny_unknown as true
}

test_subject_license_is_still_judged_when_given if {
	subject := {"v0": {"package": {"name": "app", "license": {"oss_license": {"spdx_identifier": "AGPL-3.0-only"}}}, "sbom": {"bomFormat": "CycloneDX"}, "image_subject": true}}
	cloudsmith.match with input as subject
}

test_missing_license_reason if {
	r := cloudsmith.reason with input as _no_licence({"oss_license": null, "raw_license": "NOASSERTION"}) with data.sbomgate.license.allow as ["MIT"]
	r == {"license of pkg:pypi/foo@1.0.0 is unknown: the SBOM states none (it says \"NOASSERTION\"), and unknown licenses are denied in allow-list mode"}
	r2 := cloudsmith.reason with input as _no_licence(null) with data.sbomgate.license.deny_unknown as true
	r2 == {"license of pkg:pypi/foo@1.0.0 is unknown: the SBOM states none, and data.sbomgate.license.deny_unknown is set"}
}

# --- the distribution's own packages ------------------------------------------

_deb(expr) := {"v0": {
	"package": {
		"name": "bash",
		"version": "5.2.15-2+b7",
		"format": "deb",
		"purl": "pkg:deb/debian/bash@5.2.15-2%2Bb7?arch=amd64&distro=debian-12",
		"license": {"oss_license": {"spdx_identifier": expr}, "raw_license": expr},
	},
	"identity": {"purl_type": "deb"},
	"osv": null,
	"repository": {"name": "debian"},
	"sbom": null,
}}

test_os_packages_are_not_judged_by_default if {
	not cloudsmith.match with input as _deb("GPL-3.0-or-later")
	not cloudsmith.match with input as _deb("GPL-3.0-or-later")
		with data.sbomgate.license as {"allow": ["MIT"]}
}

test_os_packages_are_judged_when_asked_for if {
	cloudsmith.match with input as _deb("GPL-3.0-or-later")
		with data.sbomgate.license as {"os_packages": true}
}

test_an_os_purl_type_without_a_format_is_an_os_package if {
	doc := object.union(_deb("Sleepycat"), {"v0": {"package": {"format": null}}})
	not cloudsmith.match with input as doc
}

test_rpm_and_apk_are_os_packages if {
	every purl in ["pkg:rpm/fedora/bash@5.2", "pkg:apk/alpine/busybox@1.36.1-r29"] {
		type := split(trim_prefix(purl, "pkg:"), "/")[0]
		doc := object.union(_lic("GPL-2.0-only"), {"v0": {"package": {"purl": purl, "format": null}, "identity": {"purl_type": type}}})
		not cloudsmith.match with input as doc
	}
}

# The purl's type is read from input.v0.identity.purl_type, as sbomgate gives it, not from
# the purl: a purl alone makes no OS package.
test_the_purl_type_is_read_from_the_identity if {
	doc := object.union(_lic("GPL-2.0-only"), {"v0": {"package": {"purl": "pkg:deb/debian/bash@5.2", "format": null}}})
	cloudsmith.match with input as doc
}

test_language_packages_are_still_judged if _denied("GPL-3.0-only")

# sbomgate splits the expression before evaluation (input.v0.package.license.spdx_terms); the
# policy reads that split, and tokenises the expression itself only when it is absent.
_split(expr, terms) := json.patch(_lic(expr), [{"op": "add", "path": "/v0/package/license/spdx_terms", "value": terms}])

test_terms_from_sbomgate_are_read if {
	cloudsmith.match with input as _split("GPL-3.0-only OR MIT", ["GPL-3.0-only", "AND", "MIT"])
	not cloudsmith.match with input as _split("GPL-3.0-only OR MIT", ["GPL-3.0-only", "OR", "MIT"])
	r := cloudsmith.reason with input as _split("(MIT AND GPL-2.0-only WITH Classpath-exception-2.0)", ["(", "MIT", "AND", "GPL-2.0-only", ")"])
	r == {"license (MIT AND GPL-2.0-only WITH Classpath-exception-2.0) of pkg:pypi/foo@1.0.0 is copyleft and denied: GPL-2.0-only matched the license deny list (GPL-*)"}
}

test_terms_not_strings_fall_back_to_the_expression if {
	cloudsmith.match with input as _split("GPL-3.0-only", [5])
	cloudsmith.match with input as _split("GPL-3.0-only", "MIT")
	cloudsmith.match with input as _split("GPL-3.0-only", null)
	not cloudsmith.match with input as _split("MIT", null)
}

test_terms_without_an_expression_say_nothing if {
	not cloudsmith.match with input as _split(null, ["GPL-3.0-only"])
	not cloudsmith.match with input as _split("NOASSERTION", ["GPL-3.0-only"])
}
