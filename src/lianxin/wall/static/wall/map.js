// The town map: transformer areas drawn from their homes' geo points (a GeoJSON the server
// builds, registered with ECharts as the base layer: no tile service, works offline), homes
// coloured by their worst open alert, and the crews' open work orders. Refreshes every 30 s.
(function () {
  var el = document.getElementById("town-map");
  if (!el || !window.echarts) return;
  var dark = el.dataset.dark === "1";
  var chart = echarts.init(el, dark ? "dark" : null, {renderer: "canvas"});
  var SEV = {critical: "#e74c3c", warning: "#f39c12", info: "#3498db"};
  var ink = dark ? "#e8ecf2" : "#1d2330";
  window.lianxinMap = chart;

  function draw(data) {
    echarts.registerMap("lianxin-town", data.areas);
    var L = data.labels;
    var quiet = [], alarmed = {critical: [], warning: [], info: []};
    data.homes.forEach(function (h) {
      if (h.alert) alarmed[h.alert.severity] && alarmed[h.alert.severity].push(h);
      else quiet.push(h);
    });
    var regions = data.areas.features.map(function (f) {
      return {
        name: f.properties.name,
        itemStyle: f.properties.outage ? {areaColor: dark ? "#5c1f1f" : "#f6d5d1", borderColor: SEV.critical} : {},
      };
    });
    var labels = {};
    data.areas.features.forEach(function (f) { labels[f.properties.name] = f.properties.label; });
    function tip(p) {
      var d = p.data || {};
      if (p.componentType === "geo" || p.seriesType === undefined) return echarts.format.encodeHTML(labels[p.name] || p.name);
      if (d.assignee) return L.order + " #" + d.id + "<br>" + echarts.format.encodeHTML(d.assignee + " · " + d.status + " · " + d.home);
      var s = echarts.format.encodeHTML(d.code);
      if (d.alert) s += "<br>" + echarts.format.encodeHTML(d.address) + "<br><b>" + echarts.format.encodeHTML(d.alert.kind) + "</b>";
      return s;
    }
    var series = [
      {name: L.home, type: "scatter", coordinateSystem: "geo", data: quiet, symbolSize: dark ? 9 : 8,
       itemStyle: {color: dark ? "#8a9bb0" : "#5d6d7e"}},
    ];
    ["info", "warning", "critical"].forEach(function (sev) {
      series.push({
        name: L[sev], type: sev === "critical" ? "effectScatter" : "scatter", coordinateSystem: "geo",
        data: alarmed[sev], symbolSize: sev === "critical" ? 18 : 14, zlevel: 2,
        rippleEffect: {scale: 3, brushType: "stroke"}, itemStyle: {color: SEV[sev]},
      });
    });
    series.push({
      name: L.order, type: "scatter", coordinateSystem: "geo", data: data.orders, zlevel: 3,
      symbol: "pin", symbolSize: 28, symbolOffset: [0, "-40%"], itemStyle: {color: "#27ae60"},
    });
    chart.setOption({
      backgroundColor: "transparent",
      // Drawn at once: a screen that refreshes every 30 s has nothing to gain from fading in.
      animation: false,
      tooltip: {trigger: "item", formatter: tip},
      legend: {top: 4, textStyle: {color: ink, fontSize: dark ? 18 : 12}},
      geo: {
        map: "lianxin-town", roam: true, aspectScale: 0.87, top: 40, bottom: 10,
        label: {show: true, color: ink, fontSize: dark ? 18 : 12, width: dark ? 150 : 110, overflow: "break",
                textBorderColor: dark ? "#0d1117" : "#fff", textBorderWidth: 2,
                formatter: function (p) { return labels[p.name] || p.name; }},
        itemStyle: {areaColor: dark ? "#1f2a3a" : "#e8eef5", borderColor: dark ? "#4a6fa5" : "#7f9cc0", borderWidth: 1.5},
        emphasis: {label: {show: true}, itemStyle: {areaColor: dark ? "#2c3e57" : "#d4e1ef"}},
        regions: regions,
      },
      series: series,
    }, true);
    el.dataset.ready = "1";
    el.dataset.homes = String(data.homes.length);
    el.dataset.orders = String(data.orders.length);
    el.dataset.alerts = String(data.homes.length - quiet.length);
  }

  chart.on("click", function (p) {
    var d = p.data || {};
    if (d.alert && el.dataset.case) window.location = el.dataset.case + d.alert.id + "/";
    else if (d.code && el.dataset.home) window.location = el.dataset.home.replace("CODE", encodeURIComponent(d.code));
  });

  function load() {
    fetch(el.dataset.url, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(draw)
      .catch(function () { el.dataset.error = "1"; });
  }
  load();
  setInterval(load, 30000);
  // The wall's panels settle their sizes once the counters are filled in: follow the box.
  if (window.ResizeObserver) new ResizeObserver(function () { chart.resize(); }).observe(el);
  else window.addEventListener("resize", function () { chart.resize(); });
})();
