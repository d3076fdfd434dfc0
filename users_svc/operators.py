"""Grant or revoke the operator role: ``python -m users_svc.operators grant|revoke|list [email]``.

Operators read every saga and act on them (``GET /v1/sagas`` and the rest, docs/api.md). The role
is a column on the account; a login's access token carries it. Revoking it also ends the user's
sessions everywhere, so no token issued with the role outlives it. Exit status 1 when the account
is unknown.
"""

import argparse
import sys

import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .auth import TokenStore
from .config import get_settings
from .db import make_sessionmaker
from .models import AccountStatus, RegistrationStatus, UserAccount


def _account(session: Session, email: str) -> UserAccount | None:
    """The live account holding the email (not a failed registration, not purged)."""
    return session.scalar(
        select(UserAccount)
        .where(
            func.lower(UserAccount.email) == email.strip().lower(),
            UserAccount.registration_status != RegistrationStatus.FAILED,
            UserAccount.account_status != AccountStatus.PURGED,
        )
        .with_for_update()
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m users_svc.operators", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("action", choices=["grant", "revoke", "list"])
    parser.add_argument("email", nargs="?")
    args = parser.parse_args(argv)
    settings = get_settings()
    make_session = make_sessionmaker(settings.database_url)
    try:
        if args.action == "list":
            with make_session() as session:
                for email in session.scalars(select(UserAccount.email).where(UserAccount.is_operator).order_by(UserAccount.id)):
                    print(email)
            return 0
        if not args.email:
            parser.error(f"{args.action} needs an email")
        with make_session.begin() as session:
            user = _account(session, args.email)
            if user is None:
                print(f"no account with the email {args.email}", file=sys.stderr)
                return 1
            user.is_operator = args.action == "grant"
            user_id = user.id
        if args.action == "revoke":
            with redis.Redis.from_url(settings.broker_url, socket_connect_timeout=2, socket_timeout=2) as store:
                TokenStore(settings, store).end_sessions(user_id)
            print(f"{args.email}: operator role revoked, every session ended")
        else:
            print(f"{args.email}: operator (the role is in access tokens from the next login)")
        return 0
    finally:
        make_session.kw["bind"].dispose()


if __name__ == "__main__":
    sys.exit(main())
