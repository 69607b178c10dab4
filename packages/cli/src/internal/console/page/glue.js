// The console bridge's browser terminal: lists the consoles and shells, attaches xterm.js to one over the
// bridge's WebSocket protocol (keys out as binary frames, output in as binary frames, JSON text frames for
// control: resize on every window resize, errors and the shell's exit code shown in the status line).
// A token, when the bridge needs one, is read from the page's #token=T and sent as ?token=T.
/* global window, document, location, fetch, WebSocket, URLSearchParams, Terminal, FitAddon */
"use strict"
;(() => {
  const token = new URLSearchParams(location.hash.slice(1)).get("token")
  const withToken = (path, params = {}) => {
    const q = new URLSearchParams(params)
    if (token) q.set("token", token)
    const s = q.toString()
    return s ? `${path}?${s}` : path
  }
  const status = document.getElementById("status")
  const show = (text, isError = false) => {
    status.textContent = text
    status.className = isError ? "error" : ""
  }

  const term = new Terminal({ convertEol: false, cursorBlink: true, scrollback: 5000 })
  const fit = new FitAddon.FitAddon()
  term.loadAddon(fit)
  term.open(document.getElementById("terminal"))
  fit.fit()

  const encoder = new TextEncoder()
  let ws
  let label = ""

  const sendSize = () => {
    if (ws && ws.readyState === WebSocket.OPEN)
      ws.send(JSON.stringify({ type: "resize", cols: term.cols, rows: term.rows }))
  }
  window.addEventListener("resize", () => {
    fit.fit()
    sendSize()
  })
  term.onData((data) => {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(encoder.encode(data))
  })
  term.onBinary((data) => {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(Uint8Array.from(data, (c) => c.charCodeAt(0)))
  })

  const attach = (kind, name, button) => {
    if (ws) ws.close()
    for (const b of document.querySelectorAll("nav button")) b.classList.toggle("active", b === button)
    term.reset()
    label = `${kind === "shell" ? "shell" : "console"} ${name}`
    show(`${label}: connecting…`)
    const scheme = location.protocol === "https:" ? "wss:" : "ws:"
    const path = `/${kind}/${encodeURIComponent(name)}`
    const params = kind === "shell" ? { cols: term.cols, rows: term.rows } : {}
    const socket = new WebSocket(`${scheme}//${location.host}${withToken(path, params)}`)
    socket.binaryType = "arraybuffer"
    ws = socket
    let ended = false
    let connected = false
    socket.onmessage = (event) => {
      if (typeof event.data !== "string") return term.write(new Uint8Array(event.data))
      let m
      try {
        m = JSON.parse(event.data)
      } catch {
        return show(`${label}: unreadable control frame`, true)
      }
      if (m.type === "connected") {
        connected = true
        show(`${label}: connected`)
        sendSize()
        term.focus()
      } else if (m.type === "error") show(`${label}: error: ${m.message}`, true)
      else if (m.type === "exit") {
        ended = true
        show(`${label}: exited with code ${m.code}`, m.code !== 0)
      }
    }
    socket.onclose = (event) => {
      if (ws !== socket || ended) return
      // A refused upgrade shows no status to the page: a plain GET of the same path says why (404, 401,
      // 403); 426 means it exists but could not be opened, and the bridge's output says why.
      if (!connected)
        return void fetch(withToken(path))
          .then(async (r) =>
            show(
              r.status === 426
                ? `${label}: could not attach: it could not be opened (the bridge's output says why)`
                : `${label}: could not attach: ${r.status} ${(await r.text()).trim()}`,
              true,
            ),
          )
          .catch(() => show(`${label}: could not attach: the bridge is unreachable`, true))
      const why = event.reason ? `: ${event.reason}` : event.code === 1006 ? " (refused or unreachable)" : ""
      show(`${label}: closed${why}`, event.code !== 1000)
    }
  }

  const list = (container, kind, entries) => {
    for (const { name, source, target } of entries) {
      const button = document.createElement("button")
      button.textContent = name
      button.title = source ?? target
      button.dataset.kind = kind
      button.dataset.name = name
      button.onclick = () => attach(kind, name, button)
      container.appendChild(button)
    }
    if (entries.length === 0) container.textContent = "none"
  }

  fetch(withToken("/consoles"))
    .then(async (r) => {
      if (!r.ok) throw new Error(`${r.status}: ${(await r.text()).trim()}`)
      return r.json()
    })
    .then((l) => {
      list(document.getElementById("consoles"), "consoles", l.consoles)
      list(document.getElementById("shells"), "shell", l.shells)
    })
    .catch((e) => show(`cannot list the consoles: ${e.message}`, true))

  // For scripts and tests: what the terminal shows, one string per line.
  window.cuvetteScreen = () => {
    const b = term.buffer.active
    const lines = []
    for (let i = 0; i < b.length; i++) lines.push(b.getLine(i).translateToString(true))
    return lines
  }
  window.cuvetteTerminal = term
})()
