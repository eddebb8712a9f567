// POST /api/v1/crews/{crew_id}/sign-in with the device id: the broker's WebSocket URL, the
// client id and topics, the GPS intervals and where the crew's tasks are.

import { csrfHeader } from './csrf.js';

/** The server said no (unknown crew, device not bound to it): signing in again will not help. */
export class SignInRefused extends Error {}

export async function signIn(apiPrefix, crewId, deviceId) {
  let response;
  try {
    response = await fetch(`${apiPrefix}/crews/${encodeURIComponent(crewId)}/sign-in`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json', ...csrfHeader() },
      body: JSON.stringify({ device_id: deviceId }),
      credentials: 'same-origin',
    });
  } catch (error) {
    throw new Error(`The server cannot be reached (${error.message})`);
  }
  if (response.ok) return response.json();
  let detail = `HTTP ${response.status}`;
  try {
    const problem = await response.json();
    detail = problem.detail || problem.title || detail;
  } catch {
    // not a problem document: the status says enough
  }
  if ([401, 403, 404, 422].includes(response.status)) throw new SignInRefused(detail);
  throw new Error(detail);
}
