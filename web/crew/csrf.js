// The web session's CSRF token, which the page carries: every unsafe request sends it.

export function csrfHeader() {
  return { 'X-CSRF-Token': document.querySelector('meta[name="csrf-token"]')?.content ?? '' };
}

/** End the web session (the crew's sign-in on this device is ended by the caller). */
export async function endWebSession(apiPrefix) {
  try {
    await fetch(`${apiPrefix}/auth/logout`, { method: 'POST', headers: csrfHeader(), credentials: 'same-origin' });
  } catch {
    // offline: the session cookie ends with its lifetime
  }
}
