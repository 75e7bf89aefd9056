-- wrk script: POST a 1 KiB JSON body.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"event":"task.completed","data":"' .. string.rep("x", 1024 - 35) .. '"}'
