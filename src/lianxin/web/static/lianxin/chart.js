// The household chart: load, the home's usual band, water use, this alert's start and the
// home's earlier alerts; served ECharts only.
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
    // This alert's start in red; the home's earlier alerts in the window in grey.
    var marks = data.marks.map(function (m) {
      return {xAxis: m.at, name: m.label, isThis: !!m["this"],
              lineStyle: m["this"] ? {color: "#c0392b", type: "dashed", width: 2} : {color: "#7f8c8d", type: "dotted", width: 1.5},
              label: {color: m["this"] ? "#c0392b" : "#5d6675"}};
    });
    var water = data.water || [];
    var month = data.range === "30d";
    var legend = [d.load, d.band];
    var series = [
      {name: "_low", type: "line", data: low, stack: "band", symbol: "none", lineStyle: {opacity: 0}, silent: true, tooltip: {show: false}},
      {name: d.band, type: "line", data: width, stack: "band", symbol: "none", lineStyle: {opacity: 0},
       areaStyle: {color: month ? "rgba(46, 134, 193, 0.35)" : "rgba(46, 134, 193, 0.22)"}, itemStyle: {color: "rgba(46, 134, 193, 0.6)"}, tooltip: {show: false}},
      {name: d.load, type: "line", data: data.load, symbol: "none", sampling: "lttb", lineStyle: {width: month ? 1 : 1.5, color: "#1d2330"}, itemStyle: {color: "#1d2330"},
       markLine: marks.length ? {symbol: "none",
         label: {position: "insideEndTop", formatter: function (p) { return p.data.isThis ? d.start + " " + fmt(p.data.xAxis) : p.name; }},
         data: marks} : undefined}
    ];
    var yAxes = [{type: "value", name: "kW", min: 0}];
    if (water.length) {
      legend.push(d.water);
      yAxes.push({type: "value", name: data.water_unit, min: 0, position: "right", splitLine: {show: false}});
      series.push({name: d.water, type: "line", data: water, yAxisIndex: 1, symbol: "none", sampling: "lttb",
                   lineStyle: {width: 1.2, color: "#16a085"}, itemStyle: {color: "#16a085"}});
    }
    chart.setOption({
      useUTC: true,
      animation: false,
      grid: {left: 48, right: water.length ? 56 : 16, top: 28, bottom: 28},
      tooltip: {trigger: "axis", valueFormatter: function (v) { return v == null ? "" : v.toFixed(2); }},
      legend: {data: legend, top: 0, right: water.length ? 64 : 0},
      xAxis: {type: "time", min: data.start, max: data.end, axisLabel: {hideOverlap: true}},
      yAxis: yAxes,
      graphic: data.load.length || water.length ? [] : [{type: "text", left: "center", top: "middle", style: {text: d.nodata, fill: "#5d6675", fontSize: 14}}],
      series: series
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
