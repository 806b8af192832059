// watermeter live updates: listens to /events (server-sent events) and refreshes
// the figures and the current bar of each chart. The page is complete without
// this script; it only keeps the numbers fresh. Formats match the server's.
(function () {
  "use strict";
  if (!window.EventSource || !document.querySelector) { return; }

  function trim(v, digits) {
    var s = v.toFixed(digits);
    if (s.indexOf(".") >= 0) { s = s.replace(/0+$/, "").replace(/\.$/, ""); }
    return s === "-0" ? "0" : s;
  }
  function liters(l) {
    if (Math.abs(l) >= 100) { return Math.round(l).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ","); }
    return trim(l, 1);
  }
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  function when(iso, nowIso) {
    if (!iso || iso.length < 19) { return "never"; }
    if (iso.slice(0, 10) === nowIso.slice(0, 10)) { return iso.slice(11, 19); }
    return Number(iso.slice(8, 10)) + " " + MONTHS[Number(iso.slice(5, 7)) - 1] + " " + iso.slice(11, 16);
  }
  function set(box, field, text) {
    var el = box.querySelector('[data-f="' + field + '"]');
    if (el && el.textContent !== text) { el.textContent = text; }
    return el;
  }
  function bars(m, push) {
    var rects = document.querySelectorAll("svg.chart rect[data-live]");
    for (var i = 0; i < rects.length; i++) {
      var r = rects[i], id = r.ownerSVGElement.id;
      if (id.slice(0, id.lastIndexOf("-")) !== m.id) { continue; }
      if (push.now_ms >= Number(r.getAttribute("data-end"))) { location.reload(); return; }
      var svg = r.ownerSVGElement;
      var value = Number(r.getAttribute("data-base")) +
        (r.getAttribute("data-live") === "hour" ? m.this_hour_liters : m.today_liters);
      var top = Number(svg.getAttribute("data-top")), bottom = Number(svg.getAttribute("data-bottom"));
      var max = Number(svg.getAttribute("data-ymax"));
      var h = Math.min(value, max) / max * (bottom - top);
      if (value > 0 && h < 1) { h = 1; }
      r.setAttribute("y", (bottom - h).toFixed(1));
      r.setAttribute("height", h.toFixed(1));
      var title = r.parentNode.querySelector("title");
      if (title) { title.textContent = title.textContent.replace(/: [^:]*$/, ": " + liters(value) + " L"); }
    }
  }
  function update(m, push) {
    var boxes = document.querySelectorAll('.figures[data-meter="' + m.id + '"]');
    for (var i = 0; i < boxes.length; i++) {
      var b = boxes[i];
      set(b, "reading", m.reading_m3.toFixed(3));
      set(b, "today", liters(m.today_liters));
      set(b, "hour", liters(m.this_hour_liters));
      set(b, "flow", trim(m.flow_l_per_min, 1));
      var t = set(b, "last", when(m.last_event, push.now));
      if (t && m.last_event) { t.setAttribute("datetime", m.last_event); }
      var flow = b.querySelector('[data-f="flowbox"]');
      if (flow) { flow.classList.toggle("flowing", m.flow_l_per_min > 0); }
    }
    bars(m, push);
  }

  var badge = document.getElementById("live");
  var source = new EventSource("/events");
  source.addEventListener("open", function () {
    if (badge) { badge.hidden = false; }
    document.documentElement.setAttribute("data-live", "on");
  });
  source.addEventListener("error", function () {
    if (badge) { badge.hidden = true; }
    document.documentElement.setAttribute("data-live", "off");
  });
  source.addEventListener("meters", function (e) {
    var push;
    try { push = JSON.parse(e.data); } catch (err) { return; }
    for (var i = 0; i < push.meters.length; i++) { update(push.meters[i], push); }
  });
})();
