/* Enque agent UI: what every page needs — toasts, confirmations, auto-submitting selects,
   the keyboard shortcut registry and the help dialog. Plain JavaScript, no build step. */
(function () {
  "use strict";

  const Enque = (window.Enque = window.Enque || {});

  // --- Toasts ------------------------------------------------------------------------------
  const toastRegion = () => document.getElementById("toasts");

  function armToast(toast) {
    const close = toast.querySelector(".toast-close");
    if (close) close.addEventListener("click", () => toast.remove());
    if (toast.hasAttribute("data-autohide")) {
      setTimeout(() => toast.remove(), toast.classList.contains("toast-error") ? 10000 : 5000);
    }
  }

  Enque.toast = function (text, kind) {
    const region = toastRegion();
    if (!region || !text) return;
    const toast = document.createElement("div");
    toast.className = "toast toast-" + (kind || "info");
    toast.setAttribute("data-autohide", "");
    toast.textContent = text;
    const close = document.createElement("button");
    close.type = "button";
    close.className = "toast-close";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    toast.appendChild(close);
    region.appendChild(toast);
    armToast(toast);
    // Three at most: a burst of changes does not bury the page.
    const shown = region.querySelectorAll(".toast");
    for (let i = 0; i < shown.length - 3; i++) shown[i].remove();
  };

  // Swapped-in fragments carry their message as <template data-toast="success">.
  function showTemplateToasts(root) {
    (root.querySelectorAll ? root.querySelectorAll("template[data-toast]") : []).forEach((t) => {
      Enque.toast(t.content.textContent.trim(), t.dataset.toast);
      t.remove();
    });
  }

  // --- Shortcuts ---------------------------------------------------------------------------
  // Pages register single keys: Enque.shortcuts.j = () => ...
  Enque.shortcuts = {};
  let pendingG = 0;

  function isTyping(target) {
    if (!target || !target.tagName) return false;
    const tag = target.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  Enque.openHelp = function () {
    const dialog = document.getElementById("help");
    if (dialog && !dialog.open) dialog.showModal();
  };

  function onKey(event) {
    if (event.defaultPrevented || event.altKey || event.metaKey) return;
    if (event.key === "Escape" && isTyping(event.target)) {
      event.target.blur();
      return;
    }
    if (event.ctrlKey || isTyping(event.target)) return;
    if (document.querySelector("dialog[open]")) return;
    const key = event.key;
    if (pendingG && Date.now() - pendingG < 1200) {
      pendingG = 0;
      const target = { i: "/", c: "/customers" }[key];
      if (target) {
        event.preventDefault();
        window.location.href = target;
      }
      return;
    }
    if (key === "g") {
      pendingG = Date.now();
      return;
    }
    if (key === "?") {
      event.preventDefault();
      Enque.openHelp();
      return;
    }
    if (key === "/") {
      const search = document.getElementById("f-q") || document.getElementById("global-search");
      if (search) {
        event.preventDefault();
        search.focus();
        search.select();
      }
      return;
    }
    const handler = Enque.shortcuts[key];
    if (handler) {
      event.preventDefault();
      handler(event);
    }
  }

  // --- Wiring ------------------------------------------------------------------------------
  function wire(root) {
    root.querySelectorAll("select[data-autosubmit]").forEach((select) => {
      if (select.dataset.wired) return;
      select.dataset.wired = "1";
      select.addEventListener("change", () => select.form && select.form.requestSubmit());
    });
    showTemplateToasts(root);
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("#toasts .toast").forEach(armToast);
    wire(document);
    document.addEventListener("keydown", onKey);
    document.querySelectorAll("[data-open-help]").forEach((button) =>
      button.addEventListener("click", () => {
        const menu = button.closest("details");
        if (menu) menu.open = false;
        Enque.openHelp();
      })
    );
    // A click outside an open menu closes it.
    document.addEventListener("click", (event) => {
      document.querySelectorAll("details.menu[open], details.send-later[open]").forEach((menu) => {
        if (!menu.contains(event.target)) menu.open = false;
      });
    });
  });

  // Confirmation for plain forms and submit buttons (htmx forms use hx-confirm).
  document.addEventListener(
    "submit",
    (event) => {
      const submitter = event.submitter;
      const message =
        (submitter && submitter.dataset.confirm) ||
        (event.target.dataset && event.target.dataset.confirm);
      if (message && !window.confirm(message)) {
        event.preventDefault();
        event.stopImmediatePropagation();
      }
    },
    true
  );

  document.addEventListener("htmx:afterSettle", (event) => wire(event.detail.elt || document));
  document.addEventListener("htmx:oobAfterSwap", (event) => wire(event.detail.target || document));
  document.addEventListener("htmx:responseError", (event) => {
    const status = event.detail.xhr ? event.detail.xhr.status : 0;
    const text =
      status === 403
        ? "You are not allowed to do that."
        : status === 413
          ? "A file is larger than the upload limit."
        : status === 404
          ? "That no longer exists."
          : "Something went wrong (" + status + "). Try again.";
    Enque.toast(text, "error");
  });
  document.addEventListener("htmx:sendError", () =>
    Enque.toast("The server could not be reached. Check your connection.", "error")
  );
})();
