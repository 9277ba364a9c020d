// The Overview's live figures and charts: /api/overview every 5 s, drawn
// with uPlot (vendored). No other page needs script.
(function () {
  "use strict";
  var base = document.body.getAttribute("data-base");
  var tp = document.getElementById("chart-throughput");
  var sr = document.getElementById("chart-success");
  if (!tp || !sr || typeof uPlot === "undefined") { return; }

  function width(el) { return Math.max(el.clientWidth - 10, 300); }
  var tpChart = new uPlot({
    width: width(tp), height: 220,
    series: [{}, { label: "pay requests/s", stroke: "#0b5cad", width: 2 }, { label: "callbacks/s", stroke: "#c26a00", width: 2 }],
    axes: [{}, { label: "per second" }]
  }, [[], [], []], tp);
  var srChart = new uPlot({
    width: width(sr), height: 220,
    scales: { y: { range: [0, 100] } },
    series: [{}, { label: "success %", stroke: "#1e7b34", width: 2, spanGaps: true }],
    axes: [{}, { label: "%" }]
  }, [[], []], sr);

  function text(id, v) { var el = document.getElementById(id); if (el) { el.textContent = v; } }
  function rows(id, items, cells) {
    var body = document.querySelector("#" + id + " tbody");
    if (!body || !items) { return; }
    body.textContent = "";
    items.forEach(function (it) {
      var tr = document.createElement("tr");
      cells(it).forEach(function (c, i) {
        var td = document.createElement("td");
        if (c && c.href) { var a = document.createElement("a"); a.href = c.href; a.textContent = c.text; td.appendChild(a); }
        else { td.textContent = c; }
        if (i > 0 && typeof c === "number") { td.className = "num"; }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }

  function draw(o) {
    var s = o.series || [];
    var t = s.map(function (p) { return Date.parse(p.t) / 1000; });
    tpChart.setData([t, s.map(function (p) { return p.pay_requests_per_s; }), s.map(function (p) { return p.callbacks_per_s; })]);
    srChart.setData([t, s.map(function (p) { return p.success_rate === null ? null : 100 * p.success_rate; })]);
    text("pay-rate", o.pay_requests_per_s.toFixed(1));
    text("cb-rate", o.callbacks_per_s.toFixed(1));
    text("success", o.success_rate === null ? "–" : (100 * o.success_rate).toFixed(1) + "%");
    text("ended", o.attempts_ended);
    text("reviews", o.flagged_reviews);
    text("sampled", o.at.replace("T", " ").replace(/\..*|Z$/, ""));
    rows("lags", o.lags, function (l) { return [l.group, l.topic, l.lag]; });
    rows("dlqs", o.dlq, function (d) { return [{ href: base + "/dlq?topic=" + encodeURIComponent(d.Topic), text: d.DLQTopic }, d.Total, d.Pending]; });
    document.body.setAttribute("data-overview-at", o.at);
  }

  function refresh() {
    fetch(base + "/api/overview", { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(draw)
      .catch(function () { /* the next tick tries again */ });
  }
  refresh();
  setInterval(refresh, 5000);
  window.addEventListener("resize", function () {
    tpChart.setSize({ width: width(tp), height: 220 });
    srChart.setSize({ width: width(sr), height: 220 });
  });
})();
