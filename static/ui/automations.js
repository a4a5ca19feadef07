/* The rule editor (Settings → Automations): remove a condition or action row, show the
   time-based help with the trigger, and keep "no conditions" visible when the list is
   empty. Rows are added and redrawn by htmx (settings_automation_row). */
(function () {
  "use strict";

  function refresh() {
    const editor = document.getElementById("rule-editor");
    if (!editor) return;
    const conditions = editor.querySelector("#conditions");
    const note = editor.querySelector(".rule-empty-note");
    if (conditions && note) note.hidden = conditions.children.length > 0;
    const trigger = editor.querySelector("select[name=trigger]");
    const help = editor.querySelector("[data-time-help]");
    if (trigger && help) help.hidden = trigger.value !== "time";
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("[data-remove-row]");
    if (!button) return;
    const row = button.closest(".rule-row");
    const list = row && row.parentElement;
    if (!row) return;
    row.remove();
    refresh();
    // Focus stays in the list: the add button after it.
    const add = list && list.parentElement && list.parentElement.querySelector("button[hx-get]");
    if (add) add.focus();
  });

  document.addEventListener("change", (event) => {
    if (event.target && event.target.name === "trigger") refresh();
  });
  document.addEventListener("htmx:afterSettle", () => refresh());
  document.addEventListener("DOMContentLoaded", () => refresh());
})();
