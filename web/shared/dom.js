// DOM helpers every page uses: building elements (text is always text, never HTML) and showing a
// form's errors accessibly. No network, no words of their own.

/**
 * `el(tag, {attrs}, ...children)`. `text` sets the text, `class` the class, `dataset` data
 * attributes, `onX` a listener; `value` is set as the live value too (a textarea or select has no
 * value attribute), after the children (a select's options must exist first); everything else is an
 * attribute (`true` → present, `false`/`null`/`undefined` → absent). Children may be nodes, text or
 * arrays of them; `null`, `undefined` and `false` are skipped.
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false || k === 'value') continue;
    if (k === 'text') node.textContent = v;
    else if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  const value = attrs.value;
  if (value !== undefined && value !== null && value !== false) {
    if (tag !== 'textarea' && tag !== 'select') node.setAttribute('value', String(value));
    node.value = String(value);
  }
  return node;
}

/**
 * Shows `message` in a form's error box (role=alert, so it is announced) and marks `fields`
 * invalid; they point at the box through aria-describedby. An empty message clears it.
 */
export function showError(box, message, fields = []) {
  box.textContent = message || '';
  box.hidden = !message;
  for (const field of fields) {
    if (!field) continue;
    if (message) {
      field.setAttribute('aria-invalid', 'true');
      const ids = new Set((field.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean));
      ids.add(box.id);
      field.setAttribute('aria-describedby', [...ids].join(' '));
    } else {
      field.removeAttribute('aria-invalid');
    }
  }
}

/** Clears every error box and invalid mark inside `form`. */
export function clearErrors(form) {
  for (const box of form.querySelectorAll('.field-error')) showError(box, '');
  for (const field of form.querySelectorAll('[aria-invalid]')) field.removeAttribute('aria-invalid');
}
