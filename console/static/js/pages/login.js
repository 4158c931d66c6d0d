// Log in with user name and password; the server keeps the session in an HttpOnly cookie.

import { api, ApiError } from "../api.js";
import { h, message } from "../dom.js";

export function loginPage(view, { notice, loggedIn }) {
  const status = h("div", { id: "login-status" }, notice ? message("info", notice) : null);
  const username = h("input", { id: "username", name: "username", autocomplete: "username", required: true });
  const password = h("input", {
    id: "password", name: "password", type: "password", autocomplete: "current-password", required: true,
  });
  const submit = h("button", { type: "submit" }, "Log in");
  const form = h("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      submit.disabled = true;
      status.replaceChildren();
      try {
        await api("POST", "/auth/login", {
          username: username.value, password: password.value, cookie: true,
        }, { expiredIsError: true });
        password.value = "";
        await loggedIn(username.value);
      } catch (err) {
        const text = err instanceof ApiError && err.status === 401
          ? "Wrong user name or password."
          : err.message;
        status.replaceChildren(message("error", text));
        password.focus();
      } finally {
        submit.disabled = false;
      }
    },
  },
  h("label", { for: "username" }, "User name", username),
  h("label", { for: "password" }, "Password", password),
  submit);
  view.append(h("section", { class: "login panel" }, h("h1", {}, "fleetgate"), status, form));
  username.focus();
}
