/* The ticket page: the reply box (public/internal switch, uploads by picker or drag-and-drop,
   canned replies, send later, Ctrl+Enter), shortcuts (r n a e u), presence ("X is viewing /
   typing") and live refresh of the thread and side panel. */
(function () {
  "use strict";

  const Enque = window.Enque;
  const body = document.body;
  const number = Number(body.dataset.ticket);
  const TYPING_IDLE = 4000;
  let typingTimer = null;
  let typing = false;
  let ownRequestAt = 0;
  let refreshTimer = null;

  function csrfToken() {
    try {
      return JSON.parse(body.getAttribute("hx-headers"))["X-CSRFToken"];
    } catch (error) {
      return "";
    }
  }

  const form = () => document.getElementById("reply-form");
  const textarea = () => form() && form().querySelector("textarea[name=body]");

  // --- The reply box -----------------------------------------------------------------------
  function setMode(mode, focus) {
    const f = form();
    if (!f) return;
    const radio = f.querySelector('input[name=mode][value="' + mode + '"]');
    if (!radio) return;
    radio.checked = true;
    syncMode();
    if (focus && textarea()) textarea().focus();
  }

  function syncMode() {
    const f = form();
    if (!f) return;
    const checked = f.querySelector("input[name=mode]:checked");
    const note = checked ? checked.value === "note" : true;
    f.classList.toggle("is-note", note);
    const area = textarea();
    if (area) area.placeholder = note ? "Write an internal note — only agents see it…" : "Write your reply…";
  }

  function addUpload(file) {
    const f = form();
    const list = f.querySelector("[data-uploads]");
    const item = document.createElement("li");
    item.className = "upload is-uploading";
    const name = document.createElement("span");
    name.textContent = file.name + " — uploading…";
    item.appendChild(name);
    list.appendChild(item);
    const data = new FormData();
    data.append("file", file);
    fetch(f.dataset.uploadUrl, {
      method: "POST",
      body: data,
      headers: { "X-CSRFToken": csrfToken() },
      credentials: "same-origin",
    })
      .then((response) => response.json().then((json) => ({ ok: response.ok, json })))
      .then(({ ok, json }) => {
        item.classList.remove("is-uploading");
        if (!ok) {
          item.classList.add("is-failed");
          name.textContent = file.name + ": " + (json.error || "upload failed");
        } else {
          name.textContent = json.filename + " (" + json.size_label + ")";
          const hidden = document.createElement("input");
          hidden.type = "hidden";
          hidden.name = "attachment_ids";
          hidden.value = json.id;
          item.appendChild(hidden);
          item.dataset.attachment = json.id;
        }
        const remove = document.createElement("button");
        remove.type = "button";
        remove.setAttribute("aria-label", "Remove " + file.name);
        remove.textContent = "×";
        remove.addEventListener("click", () => item.remove());
        item.appendChild(remove);
      })
      .catch(() => {
        item.classList.remove("is-uploading");
        item.classList.add("is-failed");
        name.textContent = file.name + ": the upload failed";
      });
  }

  function insertAtCursor(area, text) {
    const start = area.selectionStart || 0;
    const end = area.selectionEnd || 0;
    const before = area.value.slice(0, start);
    const after = area.value.slice(end);
    const glue = before && !before.endsWith("\n") ? "\n" : "";
    area.value = before + glue + text + after;
    const caret = (before + glue + text).length;
    area.setSelectionRange(caret, caret);
    area.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function wireReplyForm() {
    const f = form();
    if (!f || f.dataset.wired) return;
    f.dataset.wired = "1";
    syncMode();
    f.addEventListener("change", (event) => {
      if (event.target.name === "mode") syncMode();
      if (event.target.matches("[data-file-input]")) {
        Array.from(event.target.files).forEach(addUpload);
        event.target.value = "";
      }
    });
    const zone = f.querySelector("[data-dropzone]");
    if (zone) {
      ["dragenter", "dragover"].forEach((type) =>
        zone.addEventListener(type, (event) => {
          if (!event.dataTransfer || !Array.from(event.dataTransfer.types).includes("Files")) return;
          event.preventDefault();
          zone.classList.add("is-dragging");
        })
      );
      ["dragleave", "drop"].forEach((type) =>
        zone.addEventListener(type, () => zone.classList.remove("is-dragging"))
      );
      zone.addEventListener("drop", (event) => {
        if (!event.dataTransfer || !event.dataTransfer.files.length) return;
        event.preventDefault();
        Array.from(event.dataTransfer.files).forEach(addUpload);
      });
    }
    const area = textarea();
    if (area) {
      area.addEventListener("keydown", (event) => {
        if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
          event.preventDefault();
          f.requestSubmit();
        }
      });
      area.addEventListener("input", onTyping);
    }
    // Canned replies: filter, then insert the rendered text at the caret.
    const filter = f.querySelector("[data-canned-filter]");
    if (filter) {
      filter.addEventListener("input", () => {
        const term = filter.value.trim().toLowerCase();
        f.querySelectorAll("[data-canned-title]").forEach((button) => {
          button.parentElement.hidden = term && !button.dataset.cannedTitle.includes(term);
        });
      });
    }
    f.querySelectorAll("[data-canned-url]").forEach((button) =>
      button.addEventListener("click", () => {
        fetch(button.dataset.cannedUrl, {
          method: "POST",
          headers: { "X-CSRFToken": csrfToken() },
          credentials: "same-origin",
        })
          .then((response) => response.json().then((json) => ({ ok: response.ok, json })))
          .then(({ ok, json }) => {
            if (!ok) {
              Enque.toast(json.error || "That canned reply could not be used.", "error");
              return;
            }
            const menu = button.closest("details");
            if (menu) menu.open = false;
            const target = textarea();
            insertAtCursor(target, json.body);
            target.focus();
            if (json.unknown && json.unknown.length) {
              Enque.toast("Not filled in: " + json.unknown.join(", "), "info");
            }
          })
          .catch(() => Enque.toast("That canned reply could not be loaded.", "error"));
      })
    );
    // "Send later": the browser's local time, with its offset, for the server.
    f.addEventListener("submit", () => {
      const local = f.querySelector("input[name=send_at]");
      const iso = f.querySelector("input[name=send_at_iso]");
      if (local && iso) iso.value = local.value ? new Date(local.value).toISOString() : "";
    });
    f.addEventListener("htmx:configRequest", (event) => {
      const local = f.querySelector("input[name=send_at]");
      if (local && local.value) event.detail.parameters.send_at_iso = new Date(local.value).toISOString();
    });
  }

  // --- Presence ------------------------------------------------------------------------------
  function onTyping() {
    if (!Enque.realtime) return;
    if (!typing) {
      typing = true;
      Enque.realtime.presence(number, "typing");
    }
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => {
      typing = false;
      Enque.realtime.presence(number, "viewing");
    }, TYPING_IDLE);
  }

  function renderPresence(viewers) {
    const bar = document.getElementById("presence");
    if (!bar) return;
    const others = (viewers || []).filter((v) => v.agent !== Enque.realtime.me);
    bar.replaceChildren();
    others.forEach((viewer) => {
      const item = document.createElement("span");
      item.className = "presence-item" + (viewer.state === "typing" ? " is-typing" : "");
      const avatar = document.createElement("span");
      avatar.className = "avatar";
      avatar.setAttribute("aria-hidden", "true");
      avatar.textContent = viewer.name
        .split(/\s+/)
        .slice(0, 2)
        .map((w) => w.charAt(0).toUpperCase())
        .join("");
      item.appendChild(avatar);
      item.appendChild(
        document.createTextNode(viewer.name + (viewer.state === "typing" ? " is typing a reply…" : " is viewing"))
      );
      bar.appendChild(item);
    });
    bar.hidden = others.length === 0;
  }

  // --- Live refresh ----------------------------------------------------------------------------
  function refresh() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => {
      if (window.htmx) window.htmx.ajax("GET", body.dataset.liveUrl, { swap: "none" });
    }, 200);
  }

  function onTicketEvent(event) {
    if (event.ticket !== number) return;
    const mine = event.actor && event.actor.agent === Enque.realtime.me;
    // Our own change already came back with its response.
    if (mine && Date.now() - ownRequestAt < 3000) return;
    refresh();
  }

  // --- Shortcuts and start-up ------------------------------------------------------------------
  function post(values) {
    const url = body.dataset.liveUrl.replace(/\/live$/, "/update");
    if (window.htmx) window.htmx.ajax("POST", url, { values, swap: "none" });
  }

  document.addEventListener("DOMContentLoaded", () => {
    wireReplyForm();
    Enque.shortcuts.r = () => setMode("reply", true);
    Enque.shortcuts.n = () => setMode("note", true);
    Enque.shortcuts.a = () => {
      const select = document.getElementById("prop-assignee");
      if (!select || select.disabled) return;
      select.focus();
      // Open the list, so arrowing through names does not assign each one on the way.
      try {
        select.showPicker();
      } catch (error) {
        /* not offered (or no user gesture): focus is enough */
      }
    };
    Enque.shortcuts.e = () => {
      const status = document.getElementById("prop-status");
      if (status && !status.disabled) post({ status: "resolved" });
    };
    Enque.shortcuts.u = () => {
      window.location.href = "/";
    };

    if (Enque.realtime && number) {
      Enque.realtime.subscribe("ticket:" + number);
      Enque.realtime.presence(number, "viewing");
      ["comment.created", "ticket.updated", "ticket.assigned", "ticket.merged"].forEach((type) =>
        Enque.realtime.on(type, onTicketEvent)
      );
      Enque.realtime.on("presence.changed", (event) => {
        if (event.data && event.data.ticket === number) renderPresence(event.data.viewers);
      });
      // Events sent while the socket was down are not replayed: reload the thread and panel
      // after a reconnect.
      let dropped = false;
      Enque.realtime.on("disconnected", () => {
        dropped = true;
        renderPresence([]);
      });
      Enque.realtime.on("connected", () => {
        if (!dropped) return;
        dropped = false;
        refresh();
      });
    }
  });

  // The side panel's selects post as soon as they change. Delegated from the document, not
  // hx-trigger on each form: the panel is swapped in again after every change, and a select
  // changed in the instant before htmx has processed the new panel would be lost.
  document.addEventListener("change", (event) => {
    const form = event.target.closest && event.target.closest("form[data-autopost]");
    if (!form || !window.htmx) return;
    window.htmx.ajax("POST", form.action, { source: form, swap: "none" });
  });

  document.addEventListener("htmx:beforeRequest", (event) => {
    if (event.detail.requestConfig && event.detail.requestConfig.verb !== "get") ownRequestAt = Date.now();
  });
  document.addEventListener("htmx:oobAfterSwap", (event) => {
    if (event.detail.target && event.detail.target.id === "reply-form") wireReplyForm();
  });
  document.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.target && event.detail.target.id === "reply-form") wireReplyForm();
  });
})();
