-- The WAF benchmark's request mix (load-tests/run.sh, scenario "WAF"): in turn, a GET with
-- query parameters and cookies, a JSON POST and a form POST — ordinary chat-SaaS traffic,
-- none of it an attack, so both proxies inspect everything and refuse nothing.
local requests = {}

function init(args)
  local cookie = "sid=5f0c2a9e41b8; theme=dark; lang=en-US"
  requests[1] = wrk.format("GET",
    "/api/v1/conversations?status=open&assignee=me&sort=-updated_at&page=2&q=refund%20order%20%23A-10293",
    { ["Host"] = "chat.example.com", ["Cookie"] = cookie,
      ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
      ["Accept"] = "application/json" })
  requests[2] = wrk.format("POST", "/api/v1/conversations/8812/messages",
    { ["Host"] = "chat.example.com", ["Cookie"] = cookie,
      ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
      ["Content-Type"] = "application/json", ["Accept"] = "application/json" },
    '{"type":"text","text":"Hi! My order #A-10293 hasn\'t arrived yet, can you check the tracking number? Thanks :)","attachments":[],"client_ts":"2026-12-01T10:15:00Z"}')
  requests[3] = wrk.format("POST", "/contact",
    { ["Host"] = "chat.example.com", ["Cookie"] = cookie,
      ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
      ["Content-Type"] = "application/x-www-form-urlencoded", ["Accept"] = "text/html" },
    "name=Maria+O%27Neil&email=maria.oneil%40example.org&department=billing&message=Please+send+the+invoice+for+March+to+our+new+address%2C+thanks%21")
end

local n = 0
function request()
  n = n % #requests + 1
  return requests[n]
end
