"""Following a background job (core.app.jobs) on a page: its progress bar, polled, with an
optional Cancel button; the whole page reruns once the job has ended, so what it made appears."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import streamlit as st

if TYPE_CHECKING:
    from core.app.jobs import FractionProgress, Job, SharedJobs

T = TypeVar("T")
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


def computed(
    jobs: SharedJobs[FractionProgress, T],
    key: object,
    begin: Callable[[], Job[FractionProgress, T]],
    what: str,
    *,
    state_key: str,
    quick_s: float = 1.0,
    caption: str | None = None,
) -> T:
    """The result of ``key``'s job in ``jobs`` (started by ``begin()`` when there is none, or again
    after a failure when the Try again button was pressed). A job that ends within ``quick_s``
    seconds just returns; a longer one shows its progress and stops the script until it ends, and a
    failed one its error. The session keeps the job in ``state[state_key]`` (tests wait on it)."""
    from core.app.jobs import CANCELLED, DONE, FAILED, QUEUED, describe_error

    retry = f"{state_key}_retry"
    job = jobs.get(key)
    if job is None or (job.status in (FAILED, CANCELLED) and st.session_state.get(retry)):
        job = jobs.start(key, begin)
    job.wait(quick_s)
    if job.status == DONE:
        return job.result
    st.session_state[state_key] = job
    if job.status == FAILED:
        st.error(f"{what[:1].upper()}{what[1:]} stopped with an error: {describe_error(job.error)}")
    elif job.status == CANCELLED:
        st.warning(f"{what[:1].upper()}{what[1:]} was stopped.")
    if job.done:
        st.button("Try again", key=retry)
        st.stop()

    def progress(j: Job) -> tuple[float, str]:
        p = j.snapshot()
        text = "Waiting for a free core: other work is running on this server…" if j.status == QUEUED else p.text
        return p.fraction, f"{what}: {text}"

    follow(job, progress, caption_of=lambda j: caption or f"{j.elapsed:.0f} s so far; other sessions are not held up.")
    st.stop()
