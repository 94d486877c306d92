"""Placeholder until its page is written."""

import streamlit as st

st.title("beta_sweep")
