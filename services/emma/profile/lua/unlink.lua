-- Deletes an identifier's redirect record if it still points at ARGV[1]; returns 1 or 0.
if redis.call('HEXISTS', MAIN, 'C') == 0 and redis.call('HGET', MAIN, 'X') == ARGV[1] then
  return redis.call('DEL', MAIN)
end
return 0
