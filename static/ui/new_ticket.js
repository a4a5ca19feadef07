/* "c": open a new ticket, on the pages that have a "New ticket" button (inbox, ticket). */
(function () {
  "use strict";
  const Enque = (window.Enque = window.Enque || {});
  Enque.shortcuts = Enque.shortcuts || {};
  Enque.shortcuts.c = () => {
    const link = document.querySelector("a[data-new-ticket]");
    if (link) window.location.href = link.href;
  };
})();
