// flowscope dashboard: the little that needs a browser. Everything works without it,
// except local times (UTC is shown instead) and client-side sorting.
"use strict";

// <time datetime="...Z">: show the viewer's local time, keep UTC in the title (hover).
function localTimes(root) {
  const format = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
  for (const el of root.querySelectorAll("time[datetime]")) {
    const moment = new Date(el.getAttribute("datetime"));
    if (!isNaN(moment)) {
      el.textContent = format.format(moment);
      el.title = moment.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
    }
  }
}

// table.sortable: a <button> in each sortable header sorts by the cells' data-value
// (numbers when they parse), toggling the direction; aria-sort tells assistive tech.
function sortableTables(root) {
  for (const table of root.querySelectorAll("table.sortable")) {
    const headers = Array.from(table.tHead.rows[0].cells);
    headers.forEach((th, column) => {
      const button = th.querySelector("button[data-sort]");
      if (!button) return;
      button.addEventListener("click", () => {
        const descending = th.getAttribute("aria-sort") !== "descending";
        headers.forEach((other) => other.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", descending ? "descending" : "ascending");
        const body = table.tBodies[0];
        const rows = Array.from(body.rows);
        const key = (row) => {
          const cell = row.cells[column];
          const raw = cell ? (cell.dataset.value ?? cell.textContent.trim()) : "";
          const number = parseFloat(raw);
          return isNaN(number) ? raw : number;
        };
        rows.sort((a, b) => {
          const x = key(a), y = key(b);
          if (x === y) return 0;
          if (x === "" || x === "–") return 1;
          if (y === "" || y === "–") return -1;
          const order = x < y ? -1 : 1;
          return descending ? -order : order;
        });
        rows.forEach((row) => body.appendChild(row));
      });
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  localTimes(document);
  sortableTables(document);
});
