/* The realtime websocket (/realtime, realtime/consumers.py), signed in by the session
   cookie. Pages subscribe to channels and listen for events:

     Enque.realtime.subscribe("tickets");
     Enque.realtime.on("ticket.created", (event) => ...);   // or "*" for every event
     Enque.realtime.send({type: "presence", payload: {ticket: 12, state: "viewing"}});

   The socket reconnects with backoff (and subscribes again), pings every 25 s so the server
   does not close it as idle, and shows its state in the top bar's dot. Presence states
   sent are re-sent after a reconnect. */
(function () {
  "use strict";

  const Enque = (window.Enque = window.Enque || {});
  const PING_EVERY = 25000;
  const MAX_BACKOFF = 30000;

  const channels = new Set();
  const listeners = {};
  const presence = new Map(); // ticket number → state, replayed after a reconnect
  let socket = null;
  let backoff = 1000;
  let pingTimer = null;
  let reconnectTimer = null;
  let ready = false;
  let me = null;

  function setState(state) {
    const dot = document.getElementById("live-status");
    if (!dot) return;
    dot.dataset.state = state;
    const label = { online: "connected", offline: "reconnecting", connecting: "connecting" }[state];
    dot.title = "Live updates: " + label;
    const text = dot.querySelector(".visually-hidden");
    if (text) text.textContent = "Live updates " + label;
  }

  function emit(type, event) {
    (listeners[type] || []).concat(listeners["*"] || []).forEach((fn) => {
      try {
        fn(event);
      } catch (error) {
        console.error("realtime listener failed", error);
      }
    });
  }

  function rawSend(message) {
    if (socket && socket.readyState === WebSocket.OPEN && ready) {
      socket.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  function connect() {
    const path = document.body.dataset.realtimeUrl || "/realtime";
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    setState("connecting");
    try {
      socket = new WebSocket(scheme + window.location.host + path);
    } catch (error) {
      scheduleReconnect();
      return;
    }
    socket.addEventListener("message", (message) => {
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch (error) {
        return;
      }
      if (frame.type === "welcome") {
        ready = true;
        backoff = 1000;
        me = frame.payload && frame.payload.agent;
        setState("online");
        channels.forEach((channel) => rawSend({ type: "subscribe", payload: { channel } }));
        presence.forEach((state, ticket) =>
          rawSend({ type: "presence", payload: { ticket, state } })
        );
        emit("connected", frame);
        return;
      }
      if (frame.type === "subscribed" || frame.type === "unsubscribed") {
        // <html data-subscribed="tickets ticket:12">: what this page now receives (tests
        // wait for it before causing an event).
        const live = new Set((document.documentElement.dataset.subscribed || "").split(" "));
        const channel = frame.payload && frame.payload.channel;
        if (frame.type === "subscribed") live.add(channel);
        else live.delete(channel);
        live.delete("");
        document.documentElement.dataset.subscribed = Array.from(live).join(" ");
        return;
      }
      if (frame.type === "pong") return;
      emit(frame.type, frame);
    });
    socket.addEventListener("close", (event) => {
      ready = false;
      document.documentElement.dataset.subscribed = "";
      clearInterval(pingTimer);
      emit("disconnected", { code: event.code });
      if (event.code === 4401) {
        // Signed out (or deactivated): a reload lands on the sign-in page.
        setState("offline");
        return;
      }
      scheduleReconnect();
    });
    socket.addEventListener("open", () => {
      clearInterval(pingTimer);
      pingTimer = setInterval(() => rawSend({ type: "ping" }), PING_EVERY);
    });
  }

  function scheduleReconnect() {
    setState("offline");
    clearTimeout(reconnectTimer);
    const wait = backoff + Math.random() * 500;
    backoff = Math.min(backoff * 2, MAX_BACKOFF);
    reconnectTimer = setTimeout(connect, wait);
  }

  Enque.realtime = {
    get me() {
      return me;
    },
    subscribe(channel) {
      channels.add(channel);
      rawSend({ type: "subscribe", payload: { channel } });
    },
    on(type, fn) {
      (listeners[type] = listeners[type] || []).push(fn);
    },
    presence(ticket, state) {
      if (state === "left") presence.delete(ticket);
      else presence.set(ticket, state);
      rawSend({ type: "presence", payload: { ticket, state } });
    },
    send: rawSend,
  };

  document.addEventListener("DOMContentLoaded", connect);
  window.addEventListener("pagehide", () => {
    presence.forEach((_, ticket) => rawSend({ type: "presence", payload: { ticket, state: "left" } }));
  });
})();
