"""Following a background job (core.app.jobs) on a page: its progress bar, polled, with an
optional Cancel button; the whole page reruns once the job has ended, so what it made appears."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import streamlit as st

if TYPE_CHECKING:
    from core.app.jobs import Job

POLL_S = 0.5  # how often a page looks at a job in flight


def follow(
    job: Job,
    progress_of: Callable[[Job], tuple[float, str]],
    *,
    cancel_key: str | None = None,
    cancel_note: str = "Cancelling: the run stops after its current step.",
    caption_of: Callable[[Job], str] | None = None,
) -> None:
    """Every ``POLL_S`` seconds: the bar at ``progress_of(job)`` = (fraction in [0, 1], text),
    a caption when ``caption_of`` is given, and a Cancel button when ``cancel_key`` names one."""

    @st.fragment(run_every=POLL_S)
    def live() -> None:
        if job.done:
            st.rerun()  # the whole page: the job's result joins it
        fraction, text = progress_of(job)
        st.progress(min(1.0, max(0.0, fraction)), text=text)
        if caption_of is not None:
            st.caption(caption_of(job))
        if cancel_key is not None and st.button("Cancel", key=cancel_key, icon=":material/stop:"):
            job.cancel()
            st.toast(cancel_note)

    live()
