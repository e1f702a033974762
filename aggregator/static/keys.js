/* Keyboard shortcuts for the digest and search pages (issue 13). No framework; the pages work
   without this script (every action is also a link or a form).
   j / k   next / previous item        o   open the current item (its link)
   s       save it to your library      m   mark it read
   + / -   more / less like this (the item's vote forms)
   /       focus the search box         ?   show or hide these keys
   Keys are ignored while typing in a field or with Ctrl/Alt/Meta held. */
(function () {
  "use strict";
  var current = -1;

  function items() { return Array.prototype.slice.call(document.querySelectorAll("article.entry")); }

  function select(i) {
    var list = items();
    if (!list.length) { return; }
    i = Math.max(0, Math.min(list.length - 1, i));
    if (current >= 0 && list[current]) { list[current].classList.remove("current"); }
    current = i;
    list[i].classList.add("current");
    list[i].scrollIntoView({ block: "nearest" });
  }

  function here() { var list = items(); return current >= 0 ? list[current] : null; }

  function csrf() {
    var input = document.querySelector("input[name=csrf_token]");
    return input ? input.value : "";
  }

  function post(url, fields, done) {
    var body = new URLSearchParams(fields);
    body.set("csrf_token", csrf());
    fetch(url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (resp) {
      flash(resp.ok ? done : (resp.status === 401 || resp.status === 403 ? "sign in first" : "failed (" + resp.status + ")"));
    }, function () { flash("failed: no connection"); });
  }

  function flash(text) {
    var box = document.getElementById("keys-flash");
    if (!box) {
      box = document.createElement("div");
      box.id = "keys-flash";
      box.setAttribute("role", "status");
      box.style.cssText = "position:fixed;left:1rem;bottom:1rem;padding:.4rem .8rem;border-radius:.4rem;background:var(--card);border:1px solid var(--line);z-index:11";
      document.body.appendChild(box);
    }
    box.textContent = text;
    clearTimeout(box._timer);
    box._timer = setTimeout(function () { box.textContent = ""; }, 2500);
  }

  function itemId(el) { return el.getAttribute("data-item-id") || el.id.replace("item-", ""); }

  function vote(el, cls) {
    var button = el.querySelector("button.vote." + cls);
    if (button) { button.form.submit(); } else { flash("sign in to vote"); }
  }

  var actions = {
    "j": function () { select(current + 1); },
    "k": function () { select(current < 0 ? 0 : current - 1); },
    "o": function (el) {
      var link = el && el.querySelector("h2 a");
      if (link) {
        if (el.querySelector("button.vote")) { post("/me/items/" + itemId(el) + "/read", { unread: "false" }, "marked read"); }
        window.open(link.href, "_blank", "noopener");
      }
    },
    "s": function (el) { if (el) { post("/me/library/" + itemId(el) + "/save", { remove: "false" }, "saved to your library"); } },
    "m": function (el) {
      if (el) {
        el.classList.add("read");
        post("/me/items/" + itemId(el) + "/read", { unread: "false" }, "marked read");
      }
    },
    "+": function (el) { if (el) { vote(el, "up"); } },
    "-": function (el) { if (el) { vote(el, "down"); } },
    "/": function () { var box = document.getElementById("search-box"); if (box) { box.focus(); box.select(); } },
    "?": function () { var help = document.getElementById("keys-help"); if (help) { help.hidden = !help.hidden; } }
  };
  actions["="] = actions["+"];

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    var tag = target && target.tagName;
    if (event.ctrlKey || event.altKey || event.metaKey) { return; }
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable)) {
      if (event.key === "Escape") { target.blur(); }
      return;
    }
    var action = actions[event.key];
    if (!action) { return; }
    event.preventDefault();
    action(here());
  });
}());
