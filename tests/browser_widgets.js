// Every widget of the main area with its label and value, in page order ("stSlider Steps = 10"):
// what tests/test_browser_bookmarks.py compares between a page and its bookmark.
() => {
  const main = document.querySelector('[data-testid=stMain]');
  const text = (el) => (el ? el.textContent : '').trim();
  const kinds = ['stSlider', 'stSelectSlider', 'stSelectbox', 'stMultiSelect', 'stRadio', 'stNumberInput',
                 'stTextInput', 'stTextArea', 'stCheckbox', 'stToggle', 'stButtonGroup'];
  const on = (b) => ['aria-checked', 'aria-pressed', 'data-selected'].some((a) => b.getAttribute(a) === 'true');
  const value = (el) => {
    const t = el.dataset.testid;
    if (t === 'stSlider' || t === 'stSelectSlider')
      return [...el.querySelectorAll('[data-testid=stSliderThumbValue]')].map(text).join('|');
    if (t === 'stRadio')
      return [...el.querySelectorAll('label')].filter((l) => (l.querySelector('input') || {}).checked).map(text).join('|');
    if (t === 'stCheckbox' || t === 'stToggle') return String(el.querySelector('input').checked);
    if (t === 'stButtonGroup') return [...el.querySelectorAll('button')].filter(on).map(text).join('|');
    if (t === 'stMultiSelect') return [...el.querySelectorAll('[data-baseweb=tag], [role=listitem]')].map(text).join('|');
    const input = el.querySelector('input, textarea');
    return input ? input.value : text(el);
  };
  const selector = kinds.map((t) => `[data-testid=${t}]`).join(',');
  return [...main.querySelectorAll(selector)].map(
    (el) => `${el.dataset.testid} ${text(el.querySelector('[data-testid=stWidgetLabel]'))} = ${value(el)}`);
}
