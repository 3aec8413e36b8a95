// The household load chart: load, the home's usual band, the alert's start; served ECharts only.
(function () {
  "use strict";
  var el = document.getElementById("load-chart");
  if (!el || !window.echarts) return;
  var chart = echarts.init(el, null, {renderer: "canvas"});
  var d = el.dataset;
  var fresh = document.getElementById("freshness");
  window.addEventListener("resize", function () { chart.resize(); });

  function two(n) { return (n < 10 ? "0" : "") + n; }
  // Times arrive as wall-clock times of the deployment's zone, so format them as UTC.
  function fmt(ms) {
    var t = new Date(ms);
    return two(t.getUTCMonth() + 1) + "-" + two(t.getUTCDate()) + " " + two(t.getUTCHours()) + ":" + two(t.getUTCMinutes());
  }

  function load(range) {
    var url = d.url + (d.url.indexOf("?") < 0 ? "?" : "&") + "range=" + range;
    fetch(url, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(draw);
  }

  function draw(data) {
    if (data.latest_reading) {
      var latest = new Date(data.latest_reading);
      var mins = Math.round((Date.now() - latest.getTime()) / 60000);
      // Units and word order come translated from the page (data-min-ago, data-h-ago).
      var ago = mins < 120 ? d.minAgo.replace("{m}", mins)
        : d.hAgo.replace("{h}", Math.round(mins / 60));
      fresh.textContent = d.latest + ": " + data.latest_reading_local + " (" + ago + ")";
      fresh.classList.toggle("stale", mins > 90);
    } else {
      fresh.textContent = d.never;
      fresh.classList.add("stale");
    }
    var low = data.band.map(function (r) { return [r[0], r[1]]; });
    var width = data.band.map(function (r) { return [r[0], Math.max(0, r[2] - r[1])]; });
    var marks = data.marks.map(function (m) { return {xAxis: m.at, name: m.label}; });
    chart.setOption({
      useUTC: true,
      animation: false,
      grid: {left: 48, right: 16, top: 28, bottom: 28},
      tooltip: {trigger: "axis", valueFormatter: function (v) { return v == null ? "" : v.toFixed(2) + " kW"; }},
      legend: {data: [d.load, d.band], top: 0, right: 0},
      xAxis: {type: "time", min: data.start, max: data.end, axisLabel: {hideOverlap: true}},
      yAxis: {type: "value", name: "kW", min: 0},
      graphic: data.load.length ? [] : [{type: "text", left: "center", top: "middle", style: {text: d.nodata, fill: "#5d6675", fontSize: 14}}],
      series: [
        {name: "_low", type: "line", data: low, stack: "band", symbol: "none", lineStyle: {opacity: 0}, silent: true, tooltip: {show: false}},
        {name: d.band, type: "line", data: width, stack: "band", symbol: "none", lineStyle: {opacity: 0},
         areaStyle: {color: "rgba(46, 134, 193, 0.18)"}, itemStyle: {color: "rgba(46, 134, 193, 0.5)"}, tooltip: {show: false}},
        {name: d.load, type: "line", data: data.load, symbol: "none", sampling: "lttb", lineStyle: {width: 1.5, color: "#1d2330"}, itemStyle: {color: "#1d2330"},
         markLine: marks.length ? {symbol: "none", lineStyle: {color: "#c0392b", type: "dashed", width: 2},
           label: {formatter: d.start + " " + fmt(marks[0].xAxis), color: "#c0392b", position: "insideEndTop"}, data: marks} : undefined}
      ]
    }, true);
  }

  document.querySelectorAll(".ranges button").forEach(function (b) {
    b.addEventListener("click", function () {
      document.querySelectorAll(".ranges button").forEach(function (x) { x.classList.remove("on"); });
      b.classList.add("on");
      load(b.dataset.range);
    });
  });
  load("48h");
})();
