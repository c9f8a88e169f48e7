"""What the tests share: real servers and clusters started for them, images and attestations
pushed to them, trust policies, admission reviews, and the repository's paths.

Test modules import from here by name (`from support.trust import trust_file`); the fixtures
are registered once, in tests/conftest.py.
"""
