-- Lifts a merge marker ARGV[1] when the merge cannot complete (the survivor vanished).
if redis.call('HGET', MAIN, 'Y') == ARGV[1] then
  redis.call('HDEL', MAIN, 'Y')
  return 1
end
return 0
