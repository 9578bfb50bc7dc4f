"""`fleet tokens`: API tokens for `fleet serve` (one per kommune; shown once, stored hashed)."""

import click

from ..registry.tokens import create_token, list_tokens, revoke_token
from .common import echo_json
from .devices import ROLE_HELP, registry_options


@click.group("tokens", epilog=ROLE_HELP)
def command():
    """Create, list and revoke API tokens for the dashboard, the API and OS2iot data targets.

    \b
    Example:
      fleet tokens create --kommune 751 --name "Aarhus dashboard"
      fleet tokens list --kommune 751
      fleet tokens revoke 1a2b3c4d --kommune 751
    """


@command.command("create", epilog=ROLE_HELP)
@registry_options
@click.option("--name", help="What the token is for (shown in lists).")
@click.option("--cross-kommune", is_flag=True, help="A fleet admin's token for every kommune (needs that role).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the token included, once).")
def create_cmd(ctx_reg, name, cross_kommune, as_json):
    """Create a token for one kommune and print it ONCE: it is stored only as a hash.

    \b
    Example:
      fleet tokens create --kommune 751
    """
    reg, op, kfilter = ctx_reg()
    try:
        token, info = create_token(reg, op, kommune=kfilter or op.kommune, cross_kommune=cross_kommune, name=name)
    finally:
        reg.close()
    if as_json:
        echo_json(dict(info.to_dict(), token=token))
        return
    click.echo(token)
    click.echo(f"token {info.token_id} for {('kommune ' + info.kommune_kode) if info.kommune_kode else 'every kommune'}"
               ": shown only now; keep it in a password manager ('fleet tokens revoke "
               f"{info.token_id}' ends it)", err=True)


@command.command("list", epilog=ROLE_HELP)
@registry_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(ctx_reg, as_json):
    """List tokens (ids and kommuner; never the tokens themselves).

    \b
    Example:
      fleet tokens list --json
    """
    reg, op, _ = ctx_reg()
    try:
        infos = list_tokens(reg, op)
    finally:
        reg.close()
    if as_json:
        echo_json([i.to_dict() for i in infos])
        return
    for i in infos:
        state = f"revoked {i.revoked_at:%Y-%m-%d}" if i.revoked_at else "active"
        click.echo(f"{i.token_id}  {i.kommune_kode or 'all '}  {state:18}  {i.name}  (by {i.created_by})")


@command.command("revoke", epilog=ROLE_HELP)
@registry_options
@click.argument("token_id")
@click.option("--json", "as_json", is_flag=True, help="Print the revoked token's record as JSON.")
def revoke_cmd(ctx_reg, token_id, as_json):
    """Revoke a token by its id (the 8 hex digits after 'bys_').

    \b
    Example:
      fleet tokens revoke 3f9a12c7
    """
    reg, op, _ = ctx_reg()
    try:
        info = revoke_token(reg, op, token_id)
    finally:
        reg.close()
    if as_json:
        echo_json(info.to_dict())
    else:
        click.echo(f"token {info.token_id} revoked")
