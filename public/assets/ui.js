/* global document */
import { ApiError } from './api.js';

export const $ = (id) => document.getElementById(id);

/** The API's own sentence (error.message), and its code underneath for when someone asks for help. */
export function showError(err) {
  const box = $('error');
  box.replaceChildren();
  const text = document.createElement('p');
  text.textContent = err instanceof Error ? err.message : String(err);
  box.append(text);
  if (err instanceof ApiError && err.code && !['NETWORK', 'ABORTED'].includes(err.code)) {
    const code = document.createElement('p');
    code.className = 'hint';
    code.textContent = `Error code: ${err.code}`;
    box.append(code);
  }
  box.hidden = false;
}

export function clearError() {
  $('error').hidden = true;
  $('error').replaceChildren();
}

export function button(label, accessibleName, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  if (accessibleName) b.setAttribute('aria-label', accessibleName);
  b.addEventListener('click', onClick);
  return b;
}
