// The report form: kind, note, optional asset id, corrected attributes for a correction, and
// an optional photo, taken at the handheld's current position.

export function changeRow() {
  const row = document.createElement('div');
  row.className = 'cr-change';
  row.innerHTML =
    '<input name="change_key" placeholder="attribute" aria-label="Attribute">' +
    '<input name="change_value" placeholder="value" aria-label="Value">';
  return row;
}

/** The form's values; `changes` only for a correction, numbers kept as numbers. */
export function readReport(form) {
  const data = new FormData(form);
  const kind = data.get('kind');
  const changes = {};
  if (kind === 'attribute_correction') {
    const keys = data.getAll('change_key');
    const values = data.getAll('change_value');
    keys.forEach((key, i) => {
      const name = String(key).trim();
      if (!name) return;
      const raw = String(values[i] ?? '').trim();
      changes[name] = raw !== '' && !Number.isNaN(Number(raw)) ? Number(raw) : raw;
    });
  }
  const photo = data.get('photo');
  return {
    kind,
    note: String(data.get('note') ?? '').trim() || null,
    asset_id: String(data.get('asset_id') ?? '').trim() || null,
    changes,
    photo: photo instanceof File && photo.size > 0 ? photo : null,
  };
}

export function wireReportForm(form, onSubmit) {
  const fieldset = form.querySelector('.cr-changes');
  const rows = form.querySelector('.cr-change-rows');
  const problem = form.querySelector('.cr-problem');
  const showChanges = () => {
    fieldset.hidden = form.elements.kind.value !== 'attribute_correction';
    if (!fieldset.hidden && rows.children.length === 0) rows.append(changeRow());
  };
  form.elements.kind.addEventListener('change', showChanges);
  form.querySelector('.cr-add-change').addEventListener('click', () => rows.append(changeRow()));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    problem.hidden = true;
    const button = form.querySelector('button[type=submit]');
    button.disabled = true;
    try {
      await onSubmit(readReport(form));
      form.reset();
      rows.replaceChildren();
      showChanges();
      form.closest('details').open = false;
    } catch (error) {
      problem.textContent = error.message || String(error);
      problem.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
}
