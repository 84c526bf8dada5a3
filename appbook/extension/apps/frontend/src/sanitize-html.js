// Stands in for sanitize-html, which @jupyter-widgets/base-manager imports for one thing:
// widget descriptions with description_allow_html=True (about 230 kB of parser that every
// page would load). Appbook's widgets never allow HTML in descriptions; should one, its
// description shows as text: escaped, never interpreted.
export default function sanitize(text) {
  const node = document.createElement('span');
  node.textContent = String(text);
  return node.innerHTML;
}
