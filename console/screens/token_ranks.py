"""Token ranks: how expected each token of a text was to a model, as GLTR shows it; two deployments compared, on
one text or over a prompt set (a version diff)."""

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import streamlit as st
from byom.console import context, keys, pickers, ui
from byom.console.views import token_ranks as view
from byom.core import analysis, compare
from byom.core.errors import ByomError, InvalidInput

ws = context.workspace()
# The text, the choices and the thresholds survive a visit to another page (the results are kept anyway).
ui.remember(keys.RANK_DEPLOYMENT, keys.RANK_COMPARE, keys.RANK_SOURCE, keys.RANK_INPUT, keys.RANK_T1, keys.RANK_T2,
            keys.RANK_T3, keys.RANK_MODE, keys.RANK_PROMPT_SOURCE, keys.RANK_PROMPTS)

st.title("Token ranks")
st.caption("For each token, its rank in the model's next-token distribution: 0 is the model's first choice.")

endpoints = ws.list_endpoints()
if not endpoints:
    st.info("No endpoints yet: set up the demo on the Overview page, or deploy token_ranks.py on the Endpoints page.")
    st.stop()

cols = st.columns(3)
name = pickers.endpoint(endpoints, cols[0])
deployments = ws.list_deployments(name)
if not deployments:
    st.info(f"Endpoint {name} has no deployments: deploy token_ranks.py into it on the Endpoints page.")
    st.stop()
dep_names = view.rank_deployments(deployments)
if not dep_names:
    st.info(f"No deployment of {name} answers token ranks: deploy token_ranks.py into it on the Endpoints page.")
    st.stop()
labels = view.deployment_labels(deployments)
for key, offered in ((keys.RANK_DEPLOYMENT, dep_names), (keys.RANK_COMPARE, [view.NOTHING, *dep_names])):
    if st.session_state.get(key, offered[0]) not in offered:  # a kept choice of a deployment now gone
        st.session_state.pop(key)
primary = cols[1].selectbox("Deployment", dep_names, key=keys.RANK_DEPLOYMENT, format_func=labels.__getitem__)
other = cols[2].selectbox("Compare with", view.compare_options(dep_names, primary), key=keys.RANK_COMPARE,
                          format_func=lambda n: labels.get(n, "Nothing"))
selected = view.selected(primary, other)


def chart(figure: Any, key: str, kind: str, whose: list[analysis.Provenance]) -> None:
    """A figure stamped with what it shows, whose toolbar saves a PNG named after it."""
    st.plotly_chart(analysis.stamp(figure, whose), width="stretch", key=key,
                    config=view.chart_config(analysis.export_name(whose, "png", kind).removesuffix(".png")))


def diff_heatmap(table_a: Any, table_b: Any, name_a: str, name_b: str, key: str,
                 whose: list[analysis.Provenance]) -> None:
    """Two analyses of one text, token by token: which is subtracted from which, and 'identical' when it is."""
    diff = analysis.compare(table_a, table_b)
    unpaired = max(len(table_a), len(table_b)) - len(diff)
    if unpaired:
        st.caption(view.unpaired_text(unpaired))
    verdict = analysis.diff_verdict(diff, name_a, name_b, unpaired)
    (st.success if analysis.identical(diff, unpaired) else st.info)(ui.plain(verdict))
    chart(analysis.diff_heatmap(diff, name_a, name_b, unpaired=unpaired), key, "diff", whose)


def compare_over_prompts() -> None:
    """Two token-rank deployments over a prompt set (core.compare, as 'byom online-endpoint compare')."""
    if other == view.NOTHING:
        st.info("Choose a second token-rank deployment in 'Compare with' above: its predictions are compared with "
                f"{primary}'s, text by text.")
    source = st.radio("Prompts", view.PROMPT_SOURCES, horizontal=True, key=keys.RANK_PROMPT_SOURCE,
                      label_visibility="collapsed")
    raw, suffix, where = "", "", "The pasted prompt set"
    if source == view.PROMPT_SOURCES[1]:
        uploaded = st.file_uploader("Prompt file: one text per line, a .json list of strings, or .jsonl lines",
                                    type=view.PROMPT_FILE_TYPES, key=keys.RANK_PROMPT_FILE)
        if uploaded is not None:
            raw = uploaded.getvalue().decode("utf-8", "replace")
            suffix, where = view.prompt_suffix(uploaded.name), f"Prompt file {uploaded.name!r}"
    else:
        raw = st.text_area("Prompts, one text per line", height=150, key=keys.RANK_PROMPTS,
                           placeholder="One text per line: each is scored by both deployments.")
    if st.button("Compare", type="primary", icon=":material/compare_arrows:", key=keys.RANK_COMPARE_RUN,
                 disabled=other == view.NOTHING or not raw.strip()):
        with ui.errors():
            prompts = compare.parse_prompts(raw, suffix, where)
            with st.spinner(f"Scoring {len(prompts):,} text(s) on {primary} and {other}…"):
                compared = compare.run_comparison(ws, name, primary, other, prompts, timeout_s=view.TIMEOUT_S)
            st.session_state[keys.RANK_DIFF] = (compared, prompts,
                                                view.provenance(name, deployments, selected, analysis.now_utc()))

    kept = st.session_state.get(keys.RANK_DIFF)
    if not kept:
        return
    compared, prompts, provenance = kept
    report = compared.report
    a, b = report.deployment_a, report.deployment_b
    whose = [provenance[a], provenance[b]]
    changed = "" if (a, b) == (primary, other) else " The deployments above have changed since: Compare again."
    st.caption(ui.plain(f"Results for the {len(prompts):,} text(s) compared by {a} and {b}, analysed "
                        f"{whose[0].when()}.{changed}"))
    st.caption(ui.plain(view.direction_text(report)))
    (st.success if view.is_identical(report) else st.info)(ui.plain(view.verdict_text(report)))
    for column, (label, value) in zip(st.columns(6), view.diff_figures(report), strict=True):
        column.metric(label, value)
    st.markdown("**Per text**")
    st.dataframe(view.texts_table(report, prompts), hide_index=True, width="stretch")
    st.markdown("**The positions that moved most**")
    moved = view.moved_table(report, prompts)
    if moved.empty:
        st.caption("No token changed rank.")
    else:
        st.dataframe(moved, hide_index=True, width="stretch")
    st.download_button("Download the comparison as JSON", view.comparison_json(report, prompts, whose[0].analysed_at),
                       file_name=analysis.export_name(whose, "json", "version-diff"), mime="application/json",
                       key=keys.RANK_DIFF_JSON, icon=":material/download:")
    st.markdown("**Diff heatmap per text**")
    for diff in report.texts[:view.HEATMAP_TEXTS]:
        with st.expander(ui.plain(view.text_label(diff, prompts)), expanded=diff.text == 0):
            diff_heatmap(analysis.token_table(compared.answers_a[diff.text]),
                         analysis.token_table(compared.answers_b[diff.text]), a, b, keys.rank_diff_chart(diff.text),
                         whose)
    if len(report.texts) > view.HEATMAP_TEXTS:
        st.caption(f"Heatmaps of the first {view.HEATMAP_TEXTS} of {len(report.texts):,} texts; the tables above "
                   "hold every text.")


mode = st.radio("View", view.MODES, horizontal=True, key=keys.RANK_MODE, label_visibility="collapsed")
if mode == view.MODES[1]:
    with ui.errors():
        compare_over_prompts()
    st.stop()


def load_sample(label: str) -> None:
    st.session_state[keys.RANK_SOURCE] = view.SOURCES[0]
    st.session_state[keys.RANK_INPUT] = view.SAMPLES[label]


source_col, *sample_cols = st.columns([4, 1, 1], vertical_alignment="center")
with source_col:
    source = st.radio("Text", view.SOURCES, horizontal=True, key=keys.RANK_SOURCE, label_visibility="collapsed")
for column, label in zip(sample_cols, view.SAMPLES, strict=True):
    column.button(f"Load a {label.lower()} sample", key=keys.rank_sample(label), on_click=load_sample, args=(label,),
                  width="stretch", help="A paragraph to analyse: compare how far down the ranks each one reaches.")
if source == "Upload a text file":
    uploaded = st.file_uploader("Text file", type=["txt", "md"], key=keys.RANK_UPLOAD)
    text = uploaded.getvalue().decode("utf-8", "replace") if uploaded else ""
elif source == "The last Playground answer":
    text = st.session_state.get(keys.LAST_ANSWER, "")
    if text:
        st.text(text[:2000])
    else:
        st.info("No Playground answer yet in this session: send a prompt on the Playground page first.")
else:
    text = st.text_area("Text to analyse", height=150, key=keys.RANK_INPUT,
                        placeholder="Paste a paragraph: machine-written text tends to stay in the top 10.")

with st.expander("Bucket thresholds"):
    t = st.columns(3)
    thresholds = (
        int(t[0].number_input("Green below rank", 1, 100_000, 10, key=keys.RANK_T1)),
        int(t[1].number_input("Yellow below rank", 1, 100_000, 100, key=keys.RANK_T2)),
        int(t[2].number_input("Red below rank", 1, 100_000, 1000, key=keys.RANK_T3)),
    )
try:
    thresholds = analysis.check_thresholds(thresholds)
except InvalidInput as exc:
    ui.show_error(exc)
    thresholds = analysis.DEFAULT_THRESHOLDS

def score(deployment: str) -> Any:
    """One deployment's answer for ``text`` (run in a worker thread: no Streamlit call in here)."""
    answer = ws.invoke(name, view.rank_request(text), deployment=deployment, timeout_s=view.TIMEOUT_S)
    if not answer.ok:
        raise ByomError(f"{deployment} answered HTTP {answer.status_code}: {answer.body[:300]}",
                        hint="Read its logs on the Endpoints page.")
    try:
        return answer.json()
    except ValueError:
        raise ByomError(f"{deployment} answered HTTP {answer.status_code} with a body that is not JSON: "
                        f"{answer.body[:300]}", hint="Read its logs on the Endpoints page.") from None


if st.button("Analyse", type="primary", icon=":material/analytics:", key=keys.RANK_ANALYSE, disabled=not text.strip()):
    with ui.errors(), st.spinner(f"Scoring {len(text):,} characters…"):
        # Two deployments are scored at once: a comparison takes as long as the slower one, not the sum.
        with ThreadPoolExecutor(max_workers=len(selected)) as pool:
            futures = {deployment: pool.submit(score, deployment) for deployment in selected}
        answered = {deployment: future.result() for deployment, future in futures.items()}
        st.session_state[keys.RANK_RESULTS] = answered
        st.session_state[keys.RANK_TEXT] = text
        st.session_state[keys.RANK_PROVENANCE] = view.provenance(name, deployments, selected, analysis.now_utc())

results = st.session_state.get(keys.RANK_RESULTS)
if not results:
    st.stop()

analysed_text = st.session_state.get(keys.RANK_TEXT) or ""
st.caption(ui.plain(view.results_caption(analysed_text, text, list(results))))
try:
    tables = {dep: analysis.token_table(body, thresholds) for dep, body in results.items()}
except ByomError as exc:
    ui.show_error(exc)
    st.stop()
summaries = {dep: analysis.summarize(table, thresholds) for dep, table in tables.items()}
kept = st.session_state.get(keys.RANK_PROVENANCE) or {}
provenance = {dep: kept.get(dep) or analysis.Provenance(name, dep, "", "") for dep in tables}
everyone = list(provenance.values())


st.html(analysis.legend_html(thresholds))
columns = st.columns(len(tables))
for column, (dep, table) in zip(columns, tables.items(), strict=True):
    with column:
        summary = summaries[dep]
        st.subheader(dep)
        st.caption(ui.plain(provenance[dep].caption()))
        for figure, (label, value) in zip(st.columns(4), analysis.headline(summary, thresholds), strict=True):
            figure.metric(label, value)
        with st.container(height=320 if summary.tokens > view.LONG_TEXT_TOKENS else "content"):
            st.html(analysis.token_html(table, thresholds, analysed_text))

heatmaps, histograms, summary_tab, table_tab = st.tabs(
    ["Heatmap", "Histograms", "Summary", "Table and export"], key=keys.RANK_TABS, on_change="rerun")
with heatmaps:
    for dep, table in tables.items():
        heatmap = analysis.rank_heatmap(table, title=f"{dep}: token ranks", thresholds=thresholds)
        chart(heatmap, keys.rank_chart("heatmap", dep), "heatmap", [provenance[dep]])
    if len(tables) == 2:
        (name_a, table_a), (name_b, table_b) = tables.items()
        diff_heatmap(table_a, table_b, name_a, name_b, keys.RANK_DIFF_CHART, everyone)
with histograms:
    cols = st.columns(3)
    with cols[0]:
        chart(analysis.bucket_histogram(tables, thresholds), keys.rank_chart("buckets", "all"), "buckets", everyone)
    with cols[1]:
        chart(analysis.ratio_histogram(tables), keys.rank_chart("ratio", "all"), "ratio", everyone)
    with cols[2]:
        chart(analysis.entropy_histogram(tables), keys.rank_chart("entropy", "all"), "entropy", everyone)
with summary_tab:
    chart(analysis.summary_figure(summaries), keys.RANK_SUMMARY_CHART, "summary", everyone)
    st.dataframe(analysis.summary_table(summaries), hide_index=True, width="stretch")
with table_tab:
    for dep, table in tables.items():
        st.markdown(f"**{ui.plain(dep)}**")
        st.dataframe(view.shown_table(table), hide_index=True, width="stretch", height=300, key=keys.rank_table(dep))
        st.download_button(f"Download {dep} as CSV", analysis.to_csv(table, provenance[dep]),
                           file_name=analysis.export_name([provenance[dep]], "csv"), mime="text/csv",
                           key=keys.rank_csv(dep), icon=":material/download:")
    st.download_button("Download everything as JSON", analysis.to_json(tables, thresholds, analysed_text, provenance),
                       file_name=analysis.export_name(everyone, "json"), mime="application/json", key=keys.RANK_JSON,
                       icon=":material/download:")
    st.download_button("Download the coloured text as HTML",
                       analysis.to_html(tables, thresholds, analysed_text, provenance),
                       file_name=analysis.export_name(everyone, "html"), mime="text/html", key=keys.RANK_HTML,
                       icon=":material/download:", help="One page that opens offline, hover boxes included.")
    st.caption("Each chart's camera button saves it as a PNG, stamped with the model version, endpoint, "
               "deployment and time.")
