"""Emma's Python SDK: ask for a decision, confirm it was shown, report its reward."""

from emma_client.aio import AsyncEmmaClient
from emma_client.channels import RetryPolicy, tls_credentials
from emma_client.client import EmmaClient
from emma_client.errors import EmmaError
from emma_client.models import Decision, OpenOffer, Reason, WalletOffer
from emma_client.names import channel, identifier_kind, touchpoint
from emma_client.profile import ProfileClient
from emma_client.profile_aio import AsyncProfileClient
from emma_client.requests import DecideOptions, customer_ref

__all__ = [
    "AsyncEmmaClient",
    "AsyncProfileClient",
    "DecideOptions",
    "Decision",
    "EmmaClient",
    "EmmaError",
    "OpenOffer",
    "ProfileClient",
    "Reason",
    "RetryPolicy",
    "WalletOffer",
    "channel",
    "customer_ref",
    "identifier_kind",
    "tls_credentials",
    "touchpoint",
]
