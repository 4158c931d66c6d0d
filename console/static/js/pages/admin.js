// Administration: users (add with a role, change role, disable), grants per machine, and
// machines (enrol: the secret shown once with the agent command line; rotate; delete), every
// destructive step confirmed.

import { api, allPages } from "../api.js";
import { h, message, notice, when } from "../dom.js";

const ROLES = ["admin", "operator", "viewer"];
const LEVELS = ["view", "terminal", "command", "observe"];

function secretBox(title, secret, command) {
  return h("div", { class: "panel", id: "secret", role: "alert" },
    h("p", {}, h("strong", {}, title), " It is shown once: copy it now."),
    h("p", {}, "Secret: ", h("span", { class: "secret" }, secret)),
    h("p", {}, "Agent command line:"), h("pre", { class: "output" }, command),
    h("button", { type: "button", class: "secondary", onclick: () => navigator.clipboard?.writeText(command) },
      "Copy command line"));
}

async function act(work, done) {
  try {
    const result = await work();
    if (done) notice("info", done);
    return result;
  } catch (err) {
    notice("error", err.message);
    return undefined;
  }
}

export async function adminPage(view) {
  const [users, machines] = await Promise.all([api("GET", "/users"), allPages("/machines")]);
  const redraw = () => { view.replaceChildren(); adminPage(view); };

  // Users.
  const userRows = users.map((u) => {
    const role = h("select", { "aria-label": `Role of ${u.username}` },
      ROLES.map((r) => h("option", { value: r, selected: u.role === r }, r)));
    role.addEventListener("change", () => act(() => api("PATCH", `/users/${u.id}`, { role: role.value }),
      `${u.username} is now ${role.value}.`));
    const toggle = h("button", { type: "button", class: u.disabled ? "secondary" : "danger",
      onclick: async () => {
        const disabled = !u.disabled;
        if (disabled && !window.confirm(`Disable ${u.username}? Their sockets close at once.`)) return;
        if (await act(() => api("PATCH", `/users/${u.id}`, { disabled }), `${u.username} ${disabled ? "disabled" : "enabled"}.`) !== undefined) redraw();
      } }, u.disabled ? "Enable" : "Disable");
    return h("tr", { dataset: { user: u.username } }, h("td", {}, u.username), h("td", {}, role),
      h("td", {}, u.disabled ? "disabled" : "active"), h("td", {}, when(u.createdAt)), h("td", {}, toggle));
  });
  const newName = h("input", { id: "new-username", required: true, autocomplete: "off" });
  const newPassword = h("input", { id: "new-password", type: "password", required: true, minlength: 12, autocomplete: "new-password" });
  const newRole = h("select", { id: "new-role" }, ROLES.map((r) => h("option", { value: r, selected: r === "operator" }, r)));
  const addUser = h("form", { class: "toolbar", onsubmit: async (e) => {
    e.preventDefault();
    const body = { username: newName.value.trim(), password: newPassword.value, role: newRole.value };
    if (await act(() => api("POST", "/users", body), `${body.username} added.`) !== undefined) redraw();
  } },
  h("label", { for: "new-username" }, "User name", newName),
  h("label", { for: "new-password" }, "Password", newPassword),
  h("label", { for: "new-role" }, "Role", newRole),
  h("button", { type: "submit" }, "Add user"));

  // Grants.
  const grantUser = h("select", { id: "grant-user" }, users.filter((u) => u.role !== "admin")
    .map((u) => h("option", { value: u.id }, u.username)));
  const grantMachine = h("select", { id: "grant-machine" }, machines.map((m) => h("option", { value: m.id }, m.name)));
  const levelBoxes = LEVELS.map((level) => h("input", { type: "checkbox", value: level, id: `level-${level}` }));
  const grants = h("form", { class: "toolbar", onsubmit: (e) => {
    e.preventDefault();
    const levels = levelBoxes.filter((b) => b.checked).map((b) => b.value);
    act(() => api("PUT", `/machines/${grantMachine.value}/access/${grantUser.value}`, { levels }),
      levels.length ? `Granted ${levels.join(", ")}.` : "All access revoked.");
  } },
  h("label", { for: "grant-user" }, "User", grantUser),
  h("label", { for: "grant-machine" }, "Machine", grantMachine),
  ...levelBoxes.map((box) => h("label", { class: "inline", for: box.id }, box, ` ${box.value}`)),
  h("button", { type: "submit" }, "Set access"));

  // Machines.
  const secretArea = h("div");
  const machineName = h("input", { id: "enrol-name", required: true, autocomplete: "off" });
  const enrol = h("form", { class: "toolbar", onsubmit: async (e) => {
    e.preventDefault();
    const enrolled = await act(() => api("POST", "/machines", { name: machineName.value.trim() }));
    if (enrolled) {
      secretArea.replaceChildren(secretBox(`${enrolled.machine.name} enrolled.`, enrolled.secret, enrolled.connectCommand));
      machineName.value = "";
    }
  } }, h("label", { for: "enrol-name" }, "Machine name", machineName), h("button", { type: "submit" }, "Enrol machine"));
  const machineRows = machines.map((m) => h("tr", { dataset: { machine: m.id } },
    h("td", {}, m.name), h("td", {}, h("span", { class: `status ${m.status}` }, m.status)),
    h("td", {},
      h("button", { type: "button", class: "secondary", onclick: async () => {
        if (!window.confirm(`Rotate the secret of ${m.name}? Its agent must be given the new one.`)) return;
        const rotated = await act(() => api("POST", `/machines/${m.id}/rotate-secret`));
        if (rotated) secretArea.replaceChildren(secretBox(`New secret for ${m.name}.`, rotated.secret, rotated.connectCommand));
      } }, "Rotate secret"), " ",
      h("button", { type: "button", class: "danger", onclick: async () => {
        if (!window.confirm(`Delete ${m.name}? Its agent is disconnected and its history removed.`)) return;
        if (await act(() => api("DELETE", `/machines/${m.id}`), `${m.name} deleted.`) !== undefined) redraw();
      } }, "Delete"))));

  view.append(
    h("h1", {}, "Administration"),
    h("h2", {}, "Users"), addUser,
    h("table", { id: "users" }, h("thead", {}, h("tr", {}, ["User", "Role", "State", "Created", ""].map((n) => h("th", { scope: "col" }, n)))),
      h("tbody", {}, userRows)),
    h("h2", {}, "Access to machines"),
    users.some((u) => u.role !== "admin") && machines.length ? grants : message("info", "Add an operator or viewer and a machine first."),
    h("h2", {}, "Machines"), enrol, secretArea,
    h("table", { id: "machines" }, h("thead", {}, h("tr", {}, ["Machine", "Status", ""].map((n) => h("th", { scope: "col" }, n)))),
      h("tbody", {}, machineRows)),
  );
}
