// The operator API under /api/v1, with the console's cookie session: the browser sends the
// HttpOnly session cookie; state-changing requests repeat the csrf cookie in X-CSRF-Token.

/** An API refusal: `status` is the HTTP status, `message` the problem's detail. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let expiredHandler = () => {};

/** What to do when the server says the session is gone (401). */
export function onSessionExpired(handler) {
  expiredHandler = handler;
}

function csrfToken() {
  const entry = document.cookie.split("; ").find((c) => c.startsWith("csrf="));
  return entry ? entry.slice(5) : "";
}

/** Calls the API; resolves with the JSON body (null for 204), rejects with ApiError. */
export async function api(method, path, body, { expiredIsError = false } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken();
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch (err) {
    throw new ApiError(0, "the server cannot be reached");
  }
  if (response.status === 401 && !expiredIsError) {
    expiredHandler();
    throw new ApiError(401, "your session expired; please log in again");
  }
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    const retry = response.headers.get("Retry-After");
    const detail = problem.detail || response.statusText;
    throw new ApiError(response.status, retry ? `${detail} (retry in ${retry} s)` : detail);
  }
  return response.status === 204 ? null : response.json();
}

/** Every page of a cursor-paginated list. */
export async function allPages(path, pageSize = 1000) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api("GET", `${path}${sep}limit=${pageSize}${cursor ? `&cursor=${cursor}` : ""}`);
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return items;
}
