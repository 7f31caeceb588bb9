"""Achievement revisions: changes the API made to stored achievements (result upgrades), in commit order.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A new small table: nothing is rewritten or re-indexed in the (large) achievements table.
    op.create_table(
        "achievement_revisions",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("achievement_pk", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("revised_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["achievement_pk"], ["achievements.pk"],
                                name=op.f("fk_achievement_revisions_achievement_pk_achievements")),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_achievement_revisions")),
    )


def downgrade() -> None:
    op.drop_table("achievement_revisions")
