"""The OCI registry side: references, a guarded distribution client, attestation discovery."""

from sbomgate._internal.deadline import Deadline
from sbomgate.registry.auth import Credentials, CredentialStore
from sbomgate.registry.client import FetchedManifest, RegistryClient
from sbomgate.registry.discovery import (
    Content,
    DiscoveredImage,
    FoundAttestation,
    Layout,
    PlatformImage,
    discover,
)
from sbomgate.registry.reference import ImageReference, parse_reference
from sbomgate.registry.transport import RegistryAccess, RegistryLimits

__all__ = [
    "Content",
    "CredentialStore",
    "Credentials",
    "Deadline",
    "DiscoveredImage",
    "FetchedManifest",
    "FoundAttestation",
    "ImageReference",
    "Layout",
    "PlatformImage",
    "RegistryAccess",
    "RegistryClient",
    "RegistryLimits",
    "discover",
    "parse_reference",
]
