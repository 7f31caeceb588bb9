"""Participants already in the store as entity-resolution records, so new sources merge into them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import sqlalchemy as sa

from recommender.identity.resolve import BIRTH_DAY, EMAIL, MIDDLE, NAME_A, NAME_B, RECORD_ID, REGION, SCHOOL, SOURCE

STORE_SOURCE = "store"


def stored_records(url: str | None) -> pd.DataFrame:
    """One record per stored participant: its id, region, organization and identity row (names stay in memory)."""
    from recommender.store import Store
    from recommender.store.tables import AIF_TABLES, PK, identities

    participants = AIF_TABLES["participants"]
    query = sa.select(
        participants.c.participant_id, participants.c.region_code, participants.c.organization_id,
        identities.c.last_name, identities.c.first_name, identities.c.middle_name, identities.c.birth_date,
        identities.c.email,
    ).select_from(participants.outerjoin(identities, identities.c.participant_pk == participants.c[PK]))
    with Store(url) as store:
        store.migrate()
        with store.engine.connect() as conn:
            rows = conn.execute(query.order_by(participants.c[PK])).all()
    frame = pd.DataFrame(rows, columns=["participant_id", "region_code", "organization_id", "last_name",
                                        "first_name", "middle_name", "birth_date", "email"])
    birth = pd.to_datetime(frame["birth_date"]).to_numpy().astype("datetime64[D]")
    return pd.DataFrame({
        RECORD_ID: frame["participant_id"].astype(str).to_numpy(dtype=object),
        SOURCE: STORE_SOURCE,
        NAME_A: frame["last_name"].to_numpy(dtype=object),
        NAME_B: frame["first_name"].to_numpy(dtype=object),
        MIDDLE: frame["middle_name"].to_numpy(dtype=object),
        BIRTH_DAY: np.where(np.isnat(birth), -1, birth.astype(np.int64)),
        REGION: frame["region_code"].to_numpy(dtype=object),
        SCHOOL: frame["organization_id"].to_numpy(dtype=object),
        EMAIL: frame["email"].to_numpy(dtype=object),
    })
