"""Initial schema: the AIF tables, identities apart, feedback and ingest runs.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "competences",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("competence_id", sa.String(), nullable=False),
        sa.Column("name_ru", sa.Text(), nullable=True),
        sa.Column("name_en", sa.Text(), nullable=True),
        sa.Column("parent_id", sa.String(), nullable=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("extra", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_competences")),
        sa.UniqueConstraint("competence_id", name=op.f("uq_competences_competence_id")),
    )
    op.create_table(
        "events",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("format", sa.String(), nullable=False),
        sa.Column("level", sa.String(), nullable=False),
        sa.Column("competences", sa.Text(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("series_id", sa.String(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("registration_deadline", sa.Date(), nullable=True),
        sa.Column("region_code", sa.String(), nullable=True),
        sa.Column("online", sa.Boolean(), nullable=True),
        sa.Column("min_grade", sa.Integer(), nullable=True),
        sa.Column("max_grade", sa.Integer(), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("team_min", sa.Integer(), nullable=True),
        sa.Column("team_max", sa.Integer(), nullable=True),
        sa.Column("parent_event_id", sa.String(), nullable=True),
        sa.Column("organizer_id", sa.String(), nullable=True),
        sa.Column("resource_center_id", sa.String(), nullable=True),
        sa.Column("benefit_level", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("extra", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_events_event_id")),
    )
    op.create_index(op.f("ix_events_start_date"), "events", ["start_date"], unique=False)
    op.create_table(
        "ingest_runs",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_ingest_runs")),
    )
    op.create_table(
        "mentors",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("mentor_id", sa.String(), nullable=False),
        sa.Column("competences", sa.Text(), nullable=False),
        sa.Column("region_code", sa.String(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("online", sa.Boolean(), nullable=True),
        sa.Column("organization_type", sa.String(), nullable=True),
        sa.Column("tech_leader", sa.Boolean(), nullable=True),
        sa.Column("participant_id", sa.String(), nullable=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("extra", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_mentors")),
        sa.UniqueConstraint("mentor_id", name=op.f("uq_mentors_mentor_id")),
    )
    op.create_table(
        "organizations",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("organization_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("region_code", sa.String(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("settlement_type", sa.String(), nullable=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("extra", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_organizations")),
        sa.UniqueConstraint("organization_id", name=op.f("uq_organizations_organization_id")),
    )
    op.create_table(
        "participants",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("participant_id", sa.String(), nullable=False),
        sa.Column("region_code", sa.String(), nullable=True),
        sa.Column("gender", sa.String(), nullable=True),
        sa.Column("settlement_type", sa.String(), nullable=True),
        sa.Column("organization_id", sa.String(), nullable=True),
        sa.Column("grade", sa.Integer(), nullable=True),
        sa.Column("consent_research", sa.Boolean(), nullable=True),
        sa.Column("consent_admissions", sa.Boolean(), nullable=True),
        sa.Column("birth_year", sa.Integer(), nullable=True),
        sa.Column("grade_date", sa.Date(), nullable=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_participants")),
        sa.UniqueConstraint("participant_id", name=op.f("uq_participants_participant_id")),
    )
    op.create_table(
        "programs",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("program_id", sa.String(), nullable=False),
        sa.Column("requirements", sa.Text(), nullable=False),
        sa.Column("university", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("min_level", sa.String(), nullable=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("extra", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_programs")),
        sa.UniqueConstraint("program_id", name=op.f("uq_programs_program_id")),
    )
    op.create_table(
        "resource_centers",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("resource_center_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("region_code", sa.String(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("competences", sa.Text(), nullable=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("extra", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_resource_centers")),
        sa.UniqueConstraint("resource_center_id", name=op.f("uq_resource_centers_resource_center_id")),
    )
    op.create_table(
        "teams",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("team_id", sa.String(), nullable=False),
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("mentor_id", sa.String(), nullable=True),
        sa.Column("project_title", sa.Text(), nullable=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("extra", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_teams")),
        sa.UniqueConstraint("team_id", name=op.f("uq_teams_team_id")),
    )
    op.create_index(op.f("ix_teams_event_id"), "teams", ["event_id"], unique=False)
    op.create_table(
        "achievements",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("participant_pk", sa.Integer(), nullable=False),
        sa.Column("event_pk", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("result", sa.String(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("achievement_id", sa.String(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("team_pk", sa.Integer(), nullable=True),
        sa.Column("verified", sa.Boolean(), nullable=True),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("extra", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["event_pk"], ["events.pk"], name=op.f("fk_achievements_event_pk_events")),
        sa.ForeignKeyConstraint(
            ["participant_pk"], ["participants.pk"], name=op.f("fk_achievements_participant_pk_participants")
        ),
        sa.ForeignKeyConstraint(["team_pk"], ["teams.pk"], name=op.f("fk_achievements_team_pk_teams")),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_achievements")),
    )
    op.create_index("uq_achievements_key", "achievements", ["participant_pk", "event_pk", "role"], unique=True)
    op.create_index("uq_achievements_achievement_id", "achievements", ["achievement_id"], unique=True)
    op.create_index(op.f("ix_achievements_event_pk"), "achievements", ["event_pk"], unique=False)
    op.create_table(
        "feedback",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("feedback_id", sa.String(), nullable=False),
        sa.Column("participant_pk", sa.Integer(), nullable=False),
        sa.Column("event_pk", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["event_pk"], ["events.pk"], name=op.f("fk_feedback_event_pk_events")),
        sa.ForeignKeyConstraint(
            ["participant_pk"], ["participants.pk"], name=op.f("fk_feedback_participant_pk_participants")
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_feedback")),
        sa.UniqueConstraint("feedback_id", name=op.f("uq_feedback_feedback_id")),
    )
    op.create_index(op.f("ix_feedback_participant_pk"), "feedback", ["participant_pk"], unique=False)
    op.create_table(
        "identities",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("participant_pk", sa.Integer(), nullable=False),
        sa.Column("last_name", sa.Text(), nullable=True),
        sa.Column("first_name", sa.Text(), nullable=True),
        sa.Column("middle_name", sa.Text(), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("extra", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["participant_pk"], ["participants.pk"], name=op.f("fk_identities_participant_pk_participants")
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_identities")),
        sa.UniqueConstraint("participant_pk", name=op.f("uq_identities_participant_pk")),
    )


def downgrade() -> None:
    op.drop_table("identities")
    op.drop_index(op.f("ix_feedback_participant_pk"), table_name="feedback")
    op.drop_table("feedback")
    op.drop_index(op.f("ix_achievements_event_pk"), table_name="achievements")
    op.drop_index("uq_achievements_achievement_id", table_name="achievements")
    op.drop_index("uq_achievements_key", table_name="achievements")
    op.drop_table("achievements")
    op.drop_index(op.f("ix_teams_event_id"), table_name="teams")
    op.drop_table("teams")
    op.drop_table("resource_centers")
    op.drop_table("programs")
    op.drop_table("participants")
    op.drop_table("organizations")
    op.drop_table("mentors")
    op.drop_table("ingest_runs")
    op.drop_index(op.f("ix_events_start_date"), table_name="events")
    op.drop_table("events")
    op.drop_table("competences")
